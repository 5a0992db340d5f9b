//! Server-sent events in the exact bytes OpenAI clients parse:
//! `data: {chunk}\n\n` ... `data: [DONE]\n\n`, or an in-band error event and
//! no `[DONE]` after a fault.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_core::Stream;
use serde_json::Map;

use super::error::ApiError;
use super::request_log::{Outcome, RequestLog};
use crate::chat::walk::{skip_space, string_end, value_end};
use crate::chat::{ChatChunk, ChatCompletion, ChatStream, ChunkChoice, Delta, ToolCallDelta};
use crate::chat::{FunctionCallDelta, StreamEvent, StreamFault};
use crate::ChatError;

const DONE: &[u8] = b"data: [DONE]\n\n";

/// Turns a chat stream into SSE frames.
///
/// A chunk that no layer changed is sent as the JSON the provider sent,
/// with only its `model` replaced ([`Layout::forward`]): no second encoding, and
/// the provider's fields reach the caller exactly as written.
///
/// The caller sees usage only if it asked (`stream_options.include_usage`):
/// a lower layer may ask upstream regardless, so otherwise `usage` is removed
/// from every chunk and usage-only chunks are dropped. Every chunk names the
/// served model (after a mid-stream recovery too: the caller sees one
/// consistent stream). The call's log line is written when the stream ends,
/// or when the caller goes away.
pub(crate) struct SseBody {
    chunks: ChatStream,
    model: String,
    /// `model` as a JSON string, written into forwarded chunks.
    model_json: String,
    /// Where the last forwarded chunk's `model` was.
    layout: Layout,
    include_usage: bool,
    sent: usize,
    done: bool,
    log: RequestLog,
}

impl SseBody {
    pub(crate) fn new(
        chunks: ChatStream,
        model: String,
        include_usage: bool,
        mut log: RequestLog,
    ) -> Self {
        log.status(200);
        let model_json = model_json(&model);
        SseBody {
            chunks,
            model,
            model_json,
            layout: Layout::default(),
            include_usage,
            sent: 0,
            done: false,
            log,
        }
    }

    /// Appends the frame for one chunk to `out`; `Ok(false)` when the
    /// chunk is dropped. Nothing is appended on an error.
    fn encode(&mut self, mut event: StreamEvent, out: &mut Vec<u8>) -> Result<bool, ChatError> {
        if let Some(usage) = event.usage() {
            self.log.usage(usage);
            if !self.include_usage {
                if !event.has_choices() {
                    return Ok(false);
                }
                event
                    .chunk_mut()
                    .map_err(|e| e.into_error(self.sent))?
                    .usage = None;
            }
        }
        if event.has_content() {
            self.log.first_token();
        }
        let SseBody {
            layout, model_json, ..
        } = self;
        if event
            .raw()
            .is_some_and(|raw| layout.forward(raw, model_json, out))
        {
            return Ok(true);
        }
        let mut chunk = event.into_chunk().map_err(|e| e.into_error(self.sent))?;
        if !self.model.is_empty() {
            chunk.model.clone_from(&self.model);
        }
        if chunk.object.is_empty() {
            chunk.object = "chat.completion.chunk".to_owned();
        }
        let start = out.len();
        out.extend_from_slice(b"data: ");
        match serde_json::to_writer(&mut *out, &chunk) {
            Ok(()) => {
                out.extend_from_slice(b"\n\n");
                Ok(true)
            }
            Err(e) => {
                out.truncate(start);
                Err(ChatError::stream_interrupted(
                    StreamFault::Protocol,
                    self.sent,
                    format!("chunk could not be encoded: {e}"),
                ))
            }
        }
    }

    /// Appends the in-band error event that ends a faulted stream.
    fn fault(&mut self, error: ChatError, out: &mut Vec<u8>) {
        self.done = true;
        let api = ApiError::from_chat_error(&error);
        // Not the 200 its headers said: the answer is incomplete.
        self.log.status(api.status().as_u16());
        self.log.finish(Outcome::Failed(Some(error.kind())));
        out.extend_from_slice(format!("data: {}\n\n", api.to_json()).as_bytes());
    }
}

impl Stream for SseBody {
    type Item = Result<Bytes, Infallible>;

    /// The frames of every chunk that is ready, in one body frame (up to
    /// [`BATCH_BYTES`]): a provider's read usually holds many events, and
    /// one write for all of them costs the server a fraction of one each.
    /// Nothing waits to fill a batch: it goes out as soon as the stream
    /// has nothing more ready.
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut out = Vec::new();
        loop {
            if self.done || out.len() >= BATCH_BYTES {
                break;
            }
            // In the call's span: a stream's later attempts (recovery after
            // a cut) are the call's children too.
            let polled = {
                let SseBody { chunks, log, .. } = &mut *self;
                let _entered = log.span().enter();
                chunks.poll_event(cx)
            };
            match polled {
                Poll::Pending if out.is_empty() => return Poll::Pending,
                Poll::Pending => break,
                Poll::Ready(Some(Ok(event))) => match self.encode(event, out_for(&mut out)) {
                    Ok(true) => self.sent += 1,
                    Ok(false) => {}
                    Err(e) => self.fault(e, &mut out),
                },
                Poll::Ready(Some(Err(e))) => self.fault(e, &mut out),
                Poll::Ready(None) => {
                    self.done = true;
                    self.log.finish(Outcome::Completed);
                    out.extend_from_slice(DONE);
                }
            }
        }
        match out.is_empty() {
            true => Poll::Ready(None),
            false => Poll::Ready(Some(Ok(Bytes::from(out)))),
        }
    }
}

/// The most a body frame holds before it is handed to the server.
const BATCH_BYTES: usize = 64 * 1024;

/// The room a body frame starts with once it has a chunk: a provider's
/// read of many small chunks fills it without growing it again and again
/// (five times for twenty chunks), and a poll with nothing ready allocates
/// nothing.
const FRAME_START: usize = 4 * 1024;

/// `out`, with room for a batch if it has none yet.
fn out_for(out: &mut Vec<u8>) -> &mut Vec<u8> {
    if out.capacity() == 0 {
        out.reserve(FRAME_START);
    }
    out
}

/// Appends the frame for a chunk the provider sent as `raw` (a JSON
/// object) to `out`, with its `model` replaced by `model_json` (a JSON
/// string; empty: kept).
///
/// `false`, with nothing appended, when the typed encoding must write the
/// chunk instead (see [`with_model`]).
#[cfg(test)]
pub(crate) fn forward(raw: &[u8], model_json: &str, out: &mut Vec<u8>) -> bool {
    Layout::default().forward(raw, model_json, out)
}

/// The start of a stream's last forwarded chunk, up to where the key walk
/// stopped (past its `model` and `object`), and where `model`'s value is
/// in it.
///
/// A provider starts every chunk of a stream with the same bytes (`id`,
/// `object`, `created`, `model`), and the walk reads no further than
/// `prefix`: a chunk that starts with the same bytes has its `model` at
/// the same place, so only a comparison is left to do.
#[derive(Default)]
pub(crate) struct Layout {
    /// Empty: nothing remembered.
    prefix: Vec<u8>,
    model: (usize, usize),
}

impl Layout {
    /// Appends the frame for a chunk the provider sent as `raw` (see
    /// [`with_model`]), remembering the walk for the next chunk.
    pub(crate) fn forward(&mut self, raw: &[u8], model_json: &str, out: &mut Vec<u8>) -> bool {
        let (before, after) = match self.known(raw, model_json) {
            Some(parts) => parts,
            None => {
                let Some(outline) = Outline::of(raw) else {
                    return false;
                };
                let Some(parts) = outline.parts(raw, model_json) else {
                    return false;
                };
                self.prefix.clear();
                if let (Some(stop), Some(model), false) =
                    (outline.stop, outline.model, model_json.is_empty())
                {
                    // Only a short start is kept: a stream holds it while open.
                    if let Some(prefix) = raw.get(..stop).filter(|p| p.len() <= MAX_LAYOUT) {
                        self.prefix.extend_from_slice(prefix);
                        self.model = model;
                    }
                }
                parts
            }
        };
        write_frame(before, model_json, after, out);
        true
    }

    /// `raw` around its `model`, when it starts as the last chunk did.
    fn known<'a>(&self, raw: &'a [u8], model_json: &str) -> Option<(&'a [u8], &'a [u8])> {
        if self.prefix.is_empty() || model_json.is_empty() || !raw.starts_with(&self.prefix) {
            return None;
        }
        Some((raw.get(..self.model.0)?, raw.get(self.model.1..)?))
    }
}

/// The longest start of a chunk a [`Layout`] remembers (providers write
/// `model` within the first hundred bytes).
const MAX_LAYOUT: usize = 1024;

/// Appends `data: {before}{model_json}{after}\n\n` to `out`.
fn write_frame(before: &[u8], model_json: &str, after: &[u8], out: &mut Vec<u8>) {
    out.reserve(before.len() + model_json.len() + after.len() + 8);
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(before);
    out.extend_from_slice(model_json.as_bytes());
    out.extend_from_slice(after);
    out.extend_from_slice(b"\n\n");
}

/// `model` as the JSON string [`with_model`] writes in; empty (the
/// provider's `model` kept) when no model is named.
pub(crate) fn model_json(model: &str) -> String {
    match model.is_empty() {
        true => String::new(),
        false => serde_json::Value::from(model).to_string(),
    }
}

/// The parts of `raw`, a provider's JSON object (a chunk or a
/// completion), around the value of its `model`, for `model_json` to be
/// written between them (with `model_json` empty: all of `raw`, kept).
///
/// `None` when the typed encoding must write the object instead: it has no
/// `model` or no `object` of its own (the encoding adds them), or is not
/// plainly a JSON object.
///
/// `raw` is JSON the typed reader accepted, which refuses a repeated known
/// key (spelled with escapes or not): so a walk over its top-level keys,
/// skipping their values unread and stopping once it has seen `model` and
/// `object` (providers write both first), is enough. The walk still never
/// trusts the bytes: anything it does not expect is `None`, never a span
/// outside them.
pub(crate) fn with_model<'a>(raw: &'a [u8], model_json: &str) -> Option<(&'a [u8], &'a [u8])> {
    Outline::of(raw)?.parts(raw, model_json)
}

/// What [`with_model`] needs of a JSON object's top-level keys.
#[derive(Debug, PartialEq)]
struct Outline {
    /// Where the value of `model` starts and ends.
    model: Option<(usize, usize)>,
    /// Whether `object` is a non-empty string.
    object: bool,
    /// Where the walk stopped, having seen both `model` and `object`: it
    /// read nothing of `raw` from there on.
    stop: Option<usize>,
}

impl Outline {
    /// `raw` around its `model` (see [`with_model`]).
    fn parts<'a>(&self, raw: &'a [u8], model_json: &str) -> Option<(&'a [u8], &'a [u8])> {
        if !self.object {
            return None;
        }
        if model_json.is_empty() {
            return Some((raw, &[][..]));
        }
        let (start, end) = self.model?;
        Some((raw.get(..start)?, raw.get(end..)?))
    }

    fn of(raw: &[u8]) -> Option<Outline> {
        let mut outline = Outline {
            model: None,
            object: false,
            stop: None,
        };
        let mut seen_object = false;
        let mut at = skip_space(raw, 0);
        if raw.get(at) != Some(&b'{') {
            return None;
        }
        at = skip_space(raw, at + 1);
        if raw.get(at) == Some(&b'}') {
            return Some(outline);
        }
        loop {
            if raw.get(at) != Some(&b'"') {
                return None;
            }
            let key_end = string_end(raw, at)?;
            let key = raw.get(at + 1..key_end - 1)?;
            at = skip_space(raw, key_end);
            if raw.get(at) != Some(&b':') {
                return None;
            }
            let start = skip_space(raw, at + 1);
            let end = value_end(raw, start)?;
            match key {
                b"model" if outline.model.is_some() => return None,
                b"model" => outline.model = Some((start, end)),
                b"object" if seen_object => return None,
                b"object" => {
                    seen_object = true;
                    let value = raw.get(start..end)?;
                    outline.object = value.len() > 2 && value.first() == Some(&b'"');
                }
                _ => {}
            }
            if outline.model.is_some() && seen_object {
                outline.stop = Some(end);
                return Some(outline);
            }
            at = skip_space(raw, end);
            match raw.get(at) {
                Some(b',') => at = skip_space(raw, at + 1),
                Some(b'}') => return Some(outline),
                _ => return None,
            }
        }
    }
}

/// The chunks spelling a complete answer, for a caller that asked for a
/// stream from a stack that answered in one piece.
pub(crate) fn completion_chunks(completion: ChatCompletion) -> Vec<ChatChunk> {
    let chunk = |choices: Vec<ChunkChoice>, usage| ChatChunk {
        id: completion.id.clone(),
        object: "chat.completion.chunk".to_owned(),
        created: completion.created,
        model: completion.model.clone(),
        choices,
        usage,
        extra: Map::new(),
    };
    let mut out = Vec::new();
    for choice in &completion.choices {
        let message = &choice.message;
        let tool_calls = message.tool_calls.as_ref().map(|calls| {
            calls
                .iter()
                .enumerate()
                .map(|(i, call)| ToolCallDelta {
                    index: i as u32,
                    id: Some(call.id.clone()),
                    kind: Some(call.kind.clone()),
                    function: Some(FunctionCallDelta {
                        name: Some(call.function.name.clone()),
                        arguments: Some(call.function.arguments.clone()),
                    }),
                })
                .collect()
        });
        let delta = Delta {
            role: Some(message.role),
            content: message.content.as_ref().map(|_| message.text()),
            tool_calls,
            ..Default::default()
        };
        out.push(chunk(
            vec![ChunkChoice {
                index: choice.index,
                delta,
                finish_reason: choice.finish_reason.clone(),
                extra: Map::new(),
            }],
            None,
        ));
    }
    if completion.usage.is_some() {
        out.push(chunk(Vec::new(), completion.usage.clone()));
    }
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{json, Value};

    use futures_util::StreamExt;

    use super::forward;
    use crate::chat::{ChatChunk, ChatStream};

    fn text() -> impl Strategy<Value = String> {
        "[a-z\"\\\\é\n {}]{0,10}"
    }

    /// A chunk object with its keys in any order, compact or spaced out.
    fn chunk() -> impl Strategy<Value = String> {
        (
            text(),
            prop::option::of(text()),
            any::<u32>(),
            prop::collection::vec((any::<u8>(), prop::option::of(text())), 0..3),
            prop::option::of(text()),
            any::<u64>(),
            any::<bool>(),
        )
            .prop_map(|(id, model, created, choices, extra, seed, pretty)| {
                let choices: Vec<Value> = choices
                    .into_iter()
                    .map(|(i, t)| json!({"index": i % 4, "delta": {"content": t}, "finish_reason": null}))
                    .collect();
                let mut fields = vec![
                    ("id", json!(id)),
                    ("object", json!("chat.completion.chunk")),
                    ("created", json!(created)),
                    ("choices", Value::Array(choices)),
                ];
                if let Some(model) = model {
                    fields.push(("model", json!(model)));
                }
                if let Some(extra) = extra {
                    fields.push(("system_fingerprint", json!(extra)));
                }
                crate::chat::seeded_shuffle(&mut fields, seed);
                let sep = if pretty { " ,\n " } else { "," };
                let body = fields
                    .iter()
                    .map(|(k, v)| format!("\"{k}\"{}{v}", if pretty { " : " } else { ":" }))
                    .collect::<Vec<_>>()
                    .join(sep);
                format!("{{{body}}}")
            })
    }

    /// What [`super::with_model`] said before it walked the bytes itself:
    /// serde's borrowed read of `model` and `object`, the oracle.
    fn with_model_by_serde<'a>(raw: &'a [u8], model_json: &str) -> Option<(&'a [u8], &'a [u8])> {
        use serde_json::value::RawValue;
        #[derive(serde::Deserialize)]
        struct Names<'a> {
            #[serde(borrow, default)]
            model: Option<&'a RawValue>,
            #[serde(borrow, default)]
            object: Option<&'a RawValue>,
        }
        let names = serde_json::from_slice::<Names<'_>>(raw).ok()?;
        match names.object.map(RawValue::get) {
            Some(object) if object.starts_with('"') && object != "\"\"" => {}
            _ => return None,
        }
        if model_json.is_empty() {
            return Some((raw, &[][..]));
        }
        let model = names.model?.get();
        let start = (model.as_ptr() as usize).checked_sub(raw.as_ptr() as usize)?;
        let end = start.saturating_add(model.len());
        Some((&raw[..start], &raw[end..]))
    }

    /// A chunk, or one cut short, spliced with odd bytes, its keys repeated
    /// or spelled with escapes, `object` empty or not a string.
    fn hostile() -> impl Strategy<Value = Vec<u8>> {
        (chunk(), any::<u16>(), 0..8u8, "[ -~\\\\é]{0,6}").prop_map(|(raw, at, how, junk)| {
            let at = (at as usize) % (raw.len() + 1);
            let at = (0..=at)
                .rev()
                .find(|i| raw.is_char_boundary(*i))
                .unwrap_or(0);
            let mut raw = raw;
            match how {
                0 => raw.truncate(at),
                1 => raw.insert_str(at, &junk),
                2 => raw = raw.replacen("\"model\"", "\"mod\\u0065l\"", 1),
                3 => raw = raw.replacen("{", "{\"model\":\"x\",", 1),
                4 => raw = raw.replacen("{", "{\"object\":\"y\",", 1),
                5 => raw = raw.replacen("\"chat.completion.chunk\"", "\"\"", 1),
                6 => raw = raw.replacen("\"chat.completion.chunk\"", "[\"}\"]", 1),
                _ => raw.push_str(&junk),
            }
            raw.into_bytes()
        })
    }

    proptest! {
        /// On any chunk the typed reader accepts (the only bytes it is
        /// given), the walk over the top-level keys finds what serde's read
        /// finds, or refuses a key spelled with escapes; on any other bytes
        /// it only has to stay safe (no panic, no span outside them).
        #[test]
        fn the_key_walk_agrees_with_serde(raw in hostile(), keep in any::<bool>()) {
            let model = if keep { "" } else { "\"p/m\"" };
            let walked = super::with_model(&raw, model);
            if serde_json::from_slice::<ChatChunk>(&raw).is_err() {
                return Ok(());
            }
            let read = with_model_by_serde(&raw, model);
            match walked {
                Some(parts) => prop_assert_eq!(Some(parts), read),
                None => prop_assert!(
                    read.is_none() || raw.windows(2).any(|w| w == b"\\u"),
                    "{:?}", String::from_utf8_lossy(&raw)
                ),
            }
        }

        /// A chunk forwarded after another (its walk remembered) is written
        /// exactly as if it came first, whatever bytes follow the part it
        /// shares with the one before.
        #[test]
        fn a_remembered_layout_forwards_as_a_fresh_walk(
            first in chunk(),
            cut in any::<u16>(),
            tail in hostile(),
            served in text(),
        ) {
            let served_json = Value::from(served.as_str()).to_string();
            let mut layout = super::Layout::default();
            let mut ignored = Vec::new();
            layout.forward(first.as_bytes(), &served_json, &mut ignored);
            let cut = cut as usize % (first.len() + 1);
            let mut next = first.as_bytes()[..cut].to_vec();
            next.extend_from_slice(&tail);
            for raw in [next.as_slice(), first.as_bytes()] {
                let (mut remembered, mut fresh) = (Vec::new(), Vec::new());
                let a = layout.forward(raw, &served_json, &mut remembered);
                let b = forward(raw, &served_json, &mut fresh);
                prop_assert_eq!((a, &remembered), (b, &fresh), "{:?}", String::from_utf8_lossy(raw));
            }
        }

        /// A forwarded chunk is the provider's JSON with only `model`
        /// changed, and reads as the same chunk as the typed encoding.
        #[test]
        fn a_forwarded_chunk_is_the_providers_with_the_served_model(raw in chunk(), served in text()) {
            let served_json = Value::from(served.as_str()).to_string();
            let mut frame = Vec::new();
            let forwarded = forward(raw.as_bytes(), &served_json, &mut frame);
            let mut original: Value = serde_json::from_str(&raw).unwrap();
            if original.get("model").is_none() {
                prop_assert!(!forwarded && frame.is_empty(), "no model of its own: the typed encoding adds one");
                return Ok(());
            }
            prop_assert!(forwarded);
            let json = frame.strip_prefix(b"data: ").unwrap().strip_suffix(b"\n\n").unwrap();
            let forwarded: Value = serde_json::from_slice(json).unwrap();
            original["model"] = Value::from(served.as_str());
            prop_assert_eq!(&forwarded, &original);
            let mut typed: ChatChunk = serde_json::from_str(&raw).unwrap();
            typed.model = served;
            prop_assert_eq!(serde_json::from_slice::<ChatChunk>(json).unwrap(), typed);
        }
    }

    fn body(items: Vec<Result<ChatChunk, crate::ChatError>>) -> super::SseBody {
        let log = crate::server::request_log::RequestLog::new(
            "m",
            true,
            tokio::time::Instant::now(),
            crate::chat::AttemptLog::default(),
            None,
            tracing::Span::none(),
        );
        super::SseBody::new(ChatStream::from_items(items), "p/m".into(), true, log)
    }

    fn word(text: &str) -> ChatChunk {
        serde_json::from_value(json!({"choices": [{"index": 0, "delta": {"content": text}}]}))
            .unwrap()
    }

    #[tokio::test]
    async fn every_ready_chunk_goes_out_in_one_body_frame_with_done() {
        let mut sse = body(vec![Ok(word("a")), Ok(word("b")), Ok(word("c"))]);
        let frame = sse.next().await.unwrap().unwrap();
        let text = std::str::from_utf8(&frame).unwrap();
        assert_eq!(text.matches("data: ").count(), 4, "{text}");
        assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
        assert!(sse.next().await.is_none());
    }

    #[tokio::test]
    async fn a_fault_ends_the_batch_with_an_error_event_and_no_done() {
        let cut = crate::ChatError::stream_interrupted(crate::chat::StreamFault::Cut, 1, "cut");
        let mut sse = body(vec![Ok(word("a")), Err(cut), Ok(word("never"))]);
        let frame = sse.next().await.unwrap().unwrap();
        let text = std::str::from_utf8(&frame).unwrap();
        assert!(text.starts_with("data: {"), "{text}");
        assert!(text.contains("\"error\""), "{text}");
        assert!(
            !text.contains("never") && !text.contains("[DONE]"),
            "{text}"
        );
        assert!(sse.next().await.is_none());
    }

    #[test]
    fn a_layout_remembers_only_a_short_start() {
        let mut layout = super::Layout::default();
        let short = r#"{"id":"a","object":"chat.completion.chunk","model":"m","choices":[]}"#;
        assert!(layout.forward(short.as_bytes(), "\"p\"", &mut Vec::new()));
        assert_eq!(
            layout.prefix,
            br#"{"id":"a","object":"chat.completion.chunk","model":"m""#
        );
        let long = format!(
            r#"{{"id":"{}","object":"chat.completion.chunk","model":"m","choices":[]}}"#,
            "x".repeat(super::MAX_LAYOUT)
        );
        let mut out = Vec::new();
        assert!(layout.forward(long.as_bytes(), "\"p\"", &mut out));
        assert!(layout.prefix.is_empty(), "a long start is not kept");
        assert_eq!(
            out,
            format!(
                "data: {}\n\n",
                long.replace(r#""model":"m""#, r#""model":"p""#)
            )
            .into_bytes()
        );
    }

    #[test]
    fn a_chunk_without_object_or_named_twice_is_not_forwarded() {
        let model = "\"p/m\"";
        let mut out = Vec::new();
        assert!(!forward(br#"{"model":"m","choices":[]}"#, model, &mut out));
        assert!(!forward(
            br#"{"object":"","model":"m","choices":[]}"#,
            model,
            &mut out
        ));
        assert!(!forward(
            br#"{"model":"a","model":"b","object":"x"}"#,
            model,
            &mut out
        ));
        // A key named twice after both were seen never gets here: the
        // typed reader refuses it first, escaped or not.
        for twice in [
            r#"{"object":"x","model":"a","model":"b"}"#,
            r#"{"object":"x","model":"a","mod\u0065l":"b"}"#,
            r#"{"object":"x","model":"a","object":"y"}"#,
        ] {
            assert!(serde_json::from_str::<ChatChunk>(twice).is_err(), "{twice}");
        }
        assert!(!forward(b"not json", model, &mut out));
        assert!(out.is_empty(), "nothing written when not forwarded");
        assert!(forward(br#"{"object":"x","model":"m"}"#, "", &mut out));
        assert_eq!(&out[..], b"data: {\"object\":\"x\",\"model\":\"m\"}\n\n");
    }
}
