//! Property tests of the stream path: the SSE parser, the chunk stream and
//! the OpenAI and Anthropic event translators, fed arbitrary bytes, chunk
//! boundaries and JSON. Nothing may panic; re-chunking the same bytes must
//! not change what comes out.

use std::collections::VecDeque;

use bytes::Bytes;
use futures_util::StreamExt;
use proptest::prelude::*;
use serde_json::{json, Value};

use super::events::{Event, EventParser, SseError};
use super::sse::{Decode, Decoded, SseChunks};
use crate::chat::MalformedChunks;
use crate::providers::anthropic::stream::AnthropicEvents;
use crate::providers::openai::wire::OpenAiEvents;

fn parse(pieces: &[Vec<u8>], limit: usize) -> (Vec<Event>, Option<SseError>) {
    let mut parser = EventParser::new(limit);
    let mut events = Vec::new();
    for piece in pieces {
        if let Err(e) = parser.feed(piece, |e| events.push(e)) {
            return (events, Some(e));
        }
    }
    (events, None)
}

/// `bytes` cut at `cuts` (positions taken modulo its length).
fn split(bytes: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    at.sort_unstable();
    let mut pieces = Vec::new();
    let mut from = 0;
    for cut in at {
        pieces.push(bytes[from..cut].to_vec());
        from = cut;
    }
    pieces.push(bytes[from..].to_vec());
    pieces
}

/// Bytes that look like SSE often enough to reach every branch.
fn sse_bytes() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        Just(b"data: ".to_vec()),
        Just(b"data:".to_vec()),
        Just(b"event: x".to_vec()),
        Just(b": c".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\n\n".to_vec()),
        Just("\u{feff}".as_bytes().to_vec()),
        Just("é".as_bytes().to_vec()),
        Just(vec![0xFF]),
        prop::collection::vec(any::<u8>(), 0..6),
        "[a-z{}\":, ]{0,10}".prop_map(String::into_bytes),
    ];
    prop::collection::vec(token, 0..30).prop_map(|t| t.concat())
}

fn response(pieces: Vec<Vec<u8>>) -> super::upstream::Body {
    let frames: Vec<Result<Bytes, crate::ChatError>> =
        pieces.into_iter().map(|p| Ok(Bytes::from(p))).collect();
    Box::pin(futures_util::stream::iter(frames))
}

/// Every item of the chunk stream of `pieces`, as comparable text.
fn chunk_items<D: Decode>(pieces: Vec<Vec<u8>>, decoder: D) -> Vec<String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        let chunks = SseChunks::new(response(pieces), decoder, "m", None, MalformedChunks::new());
        chunks
            .map(|item| match item {
                Ok(chunk) => serde_json::to_string(&chunk.to_chunk()).unwrap(),
                Err(e) => format!("error {:?} {:?}", e.kind(), e.stream_fault()),
            })
            .collect()
            .await
    })
}

fn openai() -> OpenAiEvents {
    OpenAiEvents::new(false)
}

/// An OpenAI stream of `pieces` of text, whole or not.
fn openai_body(pieces: &[String], finish: bool, done: bool) -> Vec<u8> {
    let mut body = String::new();
    for piece in pieces {
        let chunk = json!({"choices": [{"index": 0, "delta": {"content": piece}}]});
        body.push_str(&format!("data: {chunk}\n\n"));
    }
    if finish {
        body.push_str(
            "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\r\n\r\n",
        );
    }
    if done {
        body.push_str("data: [DONE]\n\n");
    }
    body.into_bytes()
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<u64>().prop_map(|n| json!(n)),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|n| json!(n)),
        ".{0,6}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 32, 5, |inner| {
        let key = prop_oneof![
            Just("type"),
            Just("index"),
            Just("delta"),
            Just("text"),
            Just("partial_json"),
            Just("content_block"),
            Just("message"),
            Just("usage"),
            Just("choices"),
            Just("content"),
            Just("error"),
            Just("stop_reason"),
            Just("finish_reason"),
            Just("tool_calls"),
            Just("id"),
            Just("name"),
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key, inner), 0..5).prop_map(|fields| {
                Value::Object(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
            }),
        ]
    })
}

fn anthropic_type() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just(""),
        Just("message_start"),
        Just("content_block_start"),
        Just("content_block_delta"),
        Just("message_delta"),
        Just("message_stop"),
        Just("ping"),
        Just("error"),
        Just("other"),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_parser_gives_the_same_events_however_the_bytes_are_split(
        bytes in sse_bytes(),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
        limit in prop_oneof![Just(16usize), Just(64), Just(4096)],
    ) {
        let whole = parse(std::slice::from_ref(&bytes), limit);
        let pieces = split(&bytes, &cuts);
        prop_assert_eq!(parse(&pieces, limit), whole.clone());
        let bytewise: Vec<Vec<u8>> = bytes.iter().map(|b| vec![*b]).collect();
        prop_assert_eq!(parse(&bytewise, limit), whole);
    }

    #[test]
    fn the_chunk_stream_survives_any_bytes_the_same_way_however_split(
        bytes in sse_bytes(),
        cuts in prop::collection::vec(any::<usize>(), 0..6),
    ) {
        let whole = chunk_items(vec![bytes.clone()], openai());
        prop_assert_eq!(chunk_items(split(&bytes, &cuts), openai()), whole.clone());
        // After an error item, nothing.
        if let Some(at) = whole.iter().position(|i| i.starts_with("error")) {
            prop_assert_eq!(at, whole.len() - 1);
        }
        let anthropic = chunk_items(vec![bytes.clone()], AnthropicEvents::new());
        prop_assert_eq!(chunk_items(split(&bytes, &cuts), AnthropicEvents::new()), anthropic);
    }

    #[test]
    fn a_whole_openai_stream_delivers_every_piece_however_split(
        pieces in prop::collection::vec("[a-zé ]{1,8}", 1..10),
        cuts in prop::collection::vec(any::<usize>(), 0..10),
        finish in any::<bool>(),
        done in any::<bool>(),
    ) {
        let body = openai_body(&pieces, finish, done);
        let items = chunk_items(split(&body, &cuts), openai());
        let text: String = items
            .iter()
            .filter_map(|i| serde_json::from_str::<crate::chat::ChatChunk>(i).ok())
            .map(|c| c.text())
            .collect();
        prop_assert_eq!(text, pieces.concat());
        let failed = items.last().is_some_and(|i| i.starts_with("error"));
        prop_assert_eq!(failed, !finish && !done, "complete iff finished or [DONE]: {:?}", items);
    }

    #[test]
    fn the_openai_decoder_takes_any_json(value in any_json(), error_event in any::<bool>()) {
        let mut out = VecDeque::new();
        let event = if error_event { "error" } else { "" };
        openai().decode(event, &value.to_string(), &mut out);
        prop_assert!(out.len() <= 2);
    }

    #[test]
    fn the_anthropic_decoder_takes_any_json_in_any_order(
        events in prop::collection::vec((anthropic_type(), anthropic_type(), any_json()), 0..12),
    ) {
        let mut decoder = AnthropicEvents::new();
        let mut out = VecDeque::new();
        for (name, kind, mut value) in events {
            if let (Value::Object(fields), false) = (&mut value, kind.is_empty()) {
                fields.insert("type".to_owned(), json!(kind));
            }
            decoder.decode(name, &value.to_string(), &mut out);
        }
        for decoded in out {
            if let Decoded::Chunk(chunk) = decoded {
                prop_assert!(chunk.check_indexes().is_ok());
            }
        }
    }

    #[test]
    fn anthropic_text_deltas_translate_to_the_same_text(
        pieces in prop::collection::vec(".{1,8}", 1..10),
    ) {
        let mut decoder = AnthropicEvents::new();
        let mut out = VecDeque::new();
        let start = json!({"type": "message_start", "message": {"id": "m", "model": "c"}});
        decoder.decode("message_start", &start.to_string(), &mut out);
        for piece in &pieces {
            let delta = json!({"type": "content_block_delta", "index": 0,
                "delta": {"type": "text_delta", "text": piece}});
            decoder.decode("content_block_delta", &delta.to_string(), &mut out);
        }
        let text: String = out
            .iter()
            .map(|d| match d {
                Decoded::Chunk(c) => c.to_chunk().text(),
                other => panic!("{other:?}"),
            })
            .collect();
        prop_assert_eq!(text, pieces.concat());
    }
}

#[test]
fn a_cut_after_one_of_two_choices_finished_is_a_cut_not_a_complete_answer() {
    let body = concat!(
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}},{\"index\":1,\"delta\":{\"content\":\"b\"}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
    );
    let items = chunk_items(vec![body.as_bytes().to_vec()], openai());
    assert_eq!(items.len(), 3, "{items:?}");
    assert!(items[2].contains("Cut"), "{items:?}");
}

#[test]
fn an_event_over_the_limit_is_a_protocol_fault_after_content() {
    let mut body = openai_body(&["hi".to_owned()], false, false);
    body.extend_from_slice(b"data: ");
    body.extend(std::iter::repeat_n(
        b'x',
        crate::chat::streaming::MAX_EVENT_BYTES + 1,
    ));
    let items = chunk_items(vec![body], openai());
    assert_eq!(items.len(), 2, "{items:?}");
    assert!(items[1].contains("Protocol"), "{items:?}");
}
