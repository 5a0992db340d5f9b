//! `ChatStream::collect_completion` on hostile chunks: indexes from the
//! network are bounded, long answers are assembled in linear time, and no
//! chunk sequence panics.

use llm_fallback::chat::streaming::{MAX_CHOICES, MAX_TOOL_CALLS};
use llm_fallback::chat::{ChatChunk, ChatStream, StreamFault};
use llm_fallback::ErrorKind;
use proptest::prelude::*;
use serde_json::{json, Value};

fn chunk(value: Value) -> ChatChunk {
    serde_json::from_value(value).unwrap()
}

fn text(t: &str) -> ChatChunk {
    chunk(json!({"choices": [{"index": 0, "delta": {"content": t}}]}))
}

fn collect(
    chunks: Vec<ChatChunk>,
) -> Result<llm_fallback::chat::ChatCompletion, llm_fallback::ChatError> {
    let stream = ChatStream::from_items(chunks.into_iter().map(Ok).collect());
    futures_executor(stream.collect_completion())
}

/// Runs a future that never waits on I/O or time.
fn futures_executor<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn a_huge_choice_index_is_a_protocol_fault_not_an_allocation() {
    let huge = chunk(json!({"choices": [{"index": 4294967295u32, "delta": {"content": "x"}}]}));
    let e = collect(vec![text("a"), huge]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::StreamInterrupted);
    assert_eq!(e.stream_fault(), Some((StreamFault::Protocol, 1)));
    assert!(e.message().contains("4294967295"), "{e}");

    let last = chunk(json!({"choices": [{"index": MAX_CHOICES - 1, "delta": {"content": "x"}}]}));
    let completion = collect(vec![last]).unwrap();
    assert_eq!(completion.choices.len(), MAX_CHOICES as usize);
}

#[test]
fn a_huge_tool_call_index_is_a_protocol_fault() {
    let call = |index: u32| {
        chunk(json!({"choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": index, "function": {"arguments": "{}"}}]}}]}))
    };
    let e = collect(vec![call(u32::MAX)]).unwrap_err();
    assert_eq!(e.stream_fault(), Some((StreamFault::Protocol, 0)));
    let completion = collect(vec![call(MAX_TOOL_CALLS - 1)]).unwrap();
    let calls = completion.choices[0].message.tool_calls.as_ref().unwrap();
    assert_eq!(calls.len(), MAX_TOOL_CALLS as usize);
}

#[test]
fn a_long_answer_is_assembled_in_linear_time() {
    // 100 000 deltas, 2 MB: copying the text on every delta (the old way)
    // moves about 100 GB; appending in place takes milliseconds.
    let piece = "0123456789abcdefghij";
    let chunks = (0..100_000).map(|_| text(piece)).collect();
    let started = std::time::Instant::now();
    let completion = collect(chunks).unwrap();
    let elapsed = started.elapsed();
    assert_eq!(completion.choices[0].message.text().len(), 2_000_000);
    assert!(
        elapsed < std::time::Duration::from_secs(10),
        "took {elapsed:?}"
    );
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<u32>().prop_map(|n| json!(n)),
        any::<i64>().prop_map(|n| json!(n)),
        ".{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("index".to_owned()),
                    Just("content".to_owned()),
                    Just("tool_calls".to_owned()),
                    Just("function".to_owned()),
                    Just("arguments".to_owned()),
                    Just("finish_reason".to_owned()),
                    "[a-z]{1,6}",
                ],
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A chunk-shaped value with arbitrary parts, mostly decodable.
fn any_chunk() -> impl Strategy<Value = Value> {
    let index = prop_oneof![0u32..4, Just(MAX_CHOICES), Just(u32::MAX)];
    let choice = (index.clone(), ".{0,6}", any_json(), index, any::<bool>()).prop_map(
        |(i, content, extra, tool, finish)| {
            json!({"index": i, "delta": {"content": content, "tool_calls": [
                {"index": tool, "id": "t", "function": {"name": "f", "arguments": extra.to_string()}}]},
                "finish_reason": if finish { json!("stop") } else { Value::Null }})
        },
    );
    prop_oneof![
        prop::collection::vec(choice, 0..3).prop_map(|c| json!({"choices": c})),
        any_json(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn no_chunk_sequence_panics_and_indexes_stay_bounded(values in prop::collection::vec(any_chunk(), 0..12)) {
        let chunks: Vec<ChatChunk> = values
            .into_iter()
            .filter_map(|v| serde_json::from_value(v).ok())
            .collect();
        let in_range = chunks.iter().all(|c| c.choices.iter().all(|c| {
            c.index < MAX_CHOICES
                && c.delta.tool_calls.iter().flatten().all(|t| t.index < MAX_TOOL_CALLS)
        }));
        match collect(chunks) {
            Ok(completion) => {
                prop_assert!(in_range);
                prop_assert!(completion.choices.len() <= MAX_CHOICES as usize);
            }
            Err(e) => {
                prop_assert!(!in_range);
                prop_assert_eq!(e.kind(), ErrorKind::StreamInterrupted);
            }
        }
    }

    #[test]
    fn the_text_is_the_concatenation_of_the_deltas(pieces in prop::collection::vec(".{0,12}", 0..40)) {
        let chunks = pieces.iter().map(|p| text(p)).collect();
        let completion = collect(chunks).unwrap();
        let got = completion.choices.first().map(|c| c.message.text()).unwrap_or_default();
        prop_assert_eq!(got, pieces.concat());
    }
}
