//! OpenAI's wire format: the request as is, `chat.completion` bodies, and
//! `chat.completion.chunk` events ending with `data: [DONE]`.

use std::collections::VecDeque;

use bytes::Bytes;
use serde_json::Value;

use crate::chat::facts;
use crate::chat::{ChatCompletion, ChatError, ChatRequest, ErrorKind, Finishes, StreamEvent};
use crate::providers::transport::error;
use crate::providers::transport::sse::{Decode, Decoded};
use crate::providers::transport::Wire;

/// The OpenAI chat-completions format, shared by the OpenAI and Azure clients.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct OpenAiWire;

impl Wire for OpenAiWire {
    type Events = OpenAiEvents;

    fn encode(&self, request: &ChatRequest) -> Result<Vec<u8>, ChatError> {
        let add_usage = request.is_stream() && !mentions_usage(request);
        // The client's bytes, when the request still has them.
        if let Some(body) = request.raw_body(add_usage) {
            return body.map_err(|e| {
                ChatError::new(
                    ErrorKind::BadRequest,
                    format!("cannot encode the request: {e}"),
                )
            });
        }
        let asked;
        let request = if add_usage {
            asked = with_usage(request.clone());
            &asked
        } else {
            request
        };
        serde_json::to_vec(request).map_err(|e| {
            ChatError::new(
                ErrorKind::BadRequest,
                format!("cannot encode the request: {e}"),
            )
        })
    }

    fn completion(&self, body: Value) -> Result<ChatCompletion, String> {
        if !body.get("choices").is_some_and(Value::is_array) {
            return Err("not a chat completion".to_owned());
        }
        let completion: ChatCompletion =
            serde_json::from_value(body).map_err(|e| format!("not a chat completion ({e})"))?;
        answers_something(completion)
    }

    /// The body read once, with no `Value` tree in between, when it reads
    /// as a completion (so `choices` is an array), holds no `error` (null
    /// aside) and names no key twice (serde's derive refuses a repeated
    /// field, where the general way keeps the last): then it reads as
    /// exactly what the general way reads.
    fn completion_as_sent(&self, body: &[u8]) -> Option<ChatCompletion> {
        let completion: ChatCompletion = serde_json::from_slice(body).ok()?;
        if completion.extra.get("error").is_some_and(|e| !e.is_null()) {
            return None;
        }
        answers_something(completion).ok()
    }

    fn events(&self, request: &ChatRequest) -> OpenAiEvents {
        OpenAiEvents::new(!mentions_usage(request))
    }
}

/// `completion`, unless it answers nothing: valid JSON that answers nothing
/// must not pass for an empty answer.
fn answers_something(completion: ChatCompletion) -> Result<ChatCompletion, String> {
    if completion.choices.is_empty() {
        return Err("a chat completion without choices".to_owned());
    }
    let says_nothing = |c: &crate::chat::Choice| {
        c.finish_reason.is_none() && c.message.content.is_none() && c.message.tool_calls.is_none()
    };
    if completion.choices.iter().any(says_nothing) {
        return Err("a choice with no content, no tool calls and no finish reason".to_owned());
    }
    Ok(completion)
}

/// Whether the caller said anything about `stream_options.include_usage`.
/// A caller that set it (even to `false`, the way to opt out for endpoints
/// that reject `stream_options`) is left as is.
fn mentions_usage(request: &ChatRequest) -> bool {
    request
        .extra()
        .get("stream_options")
        .and_then(|o| o.get("include_usage"))
        .is_some_and(|v| !v.is_null())
}

/// Asks upstream for the stream's usage, so every stream reports it; the
/// caller's stream is stripped of it again ([`OpenAiEvents`]).
fn with_usage(mut request: ChatRequest) -> ChatRequest {
    let options = request
        .extra_mut()
        .entry("stream_options")
        .or_insert_with(|| Value::Object(Default::default()));
    if !options.is_object() {
        *options = Value::Object(Default::default());
    }
    if let Value::Object(options) = options {
        options.insert("include_usage".to_owned(), Value::Bool(true));
    }
    request
}

/// Reads OpenAI stream events.
///
/// - `data: [DONE]` ends the stream, with or without a finish reason before
///   it: it is the provider's word that the answer is whole (some compatible
///   servers send no finish reason).
/// - `{"error": {...}}` (or an `event: error`) is classified like an error body.
/// - An empty `data:` is a keep-alive.
/// - Any other event that is not a valid chunk is malformed (a fault).
/// - The usage-only chunk after every choice's finish reason is the last:
///   the stream ends with it, without waiting for `[DONE]`.
/// - Usage is removed (and usage-only chunks dropped) when the client asked
///   for it on the caller's behalf.
#[derive(Debug)]
pub(crate) struct OpenAiEvents {
    strip_usage: bool,
    finishes: Finishes,
    reader: facts::Reader,
}

impl OpenAiEvents {
    /// A reader that strips usage when `strip_usage`.
    pub(crate) fn new(strip_usage: bool) -> Self {
        OpenAiEvents {
            strip_usage,
            finishes: Finishes::default(),
            reader: facts::Reader::default(),
        }
    }
}

impl Decode for OpenAiEvents {
    const END: &'static str = "[DONE]";

    fn decode(&mut self, event: &str, data: &str, out: &mut VecDeque<Decoded>) {
        self.decode_owned(event, data.to_owned(), out);
    }

    fn decode_owned(&mut self, event: &str, data: String, out: &mut VecDeque<Decoded>) {
        let start = data.len() - data.trim_start().len();
        let text = data.trim();
        let end = start + text.len();
        if text.is_empty() {
            return;
        }
        if text == "[DONE]" {
            out.push_back(Decoded::Done);
            return;
        }
        // What the checks need of the chunk, straight from the text (no
        // JSON tree, no typed chunk): an error event reads too, its
        // `error` noted among the facts.
        let (facts, usage) = match self.reader.read(text) {
            Ok((facts, usage)) if event != "error" && !facts.error => (facts, usage),
            _ => {
                self.in_band_error(event, text, out);
                return;
            }
        };
        self.finishes.merge(facts.finishes);
        let usage_only = !facts.choices && usage.is_some();
        if self.strip_usage && usage_only {
            // Asked for on the caller's behalf, and nothing else in it.
            if self.finishes.complete() {
                out.push_back(Decoded::Done);
            }
            return;
        }
        let strip = self.strip_usage && usage.is_some();
        // The caller receives the provider's JSON as it came (the event's
        // own buffer, not a copy), unless the usage asked for on its
        // behalf has to be taken out of it.
        let raw = Bytes::from(data.into_bytes());
        let raw = match (start, end == raw.len()) {
            (0, true) => raw,
            _ => raw.slice(start..end),
        };
        let mut event = StreamEvent::json(raw, facts, usage);
        if strip {
            match event.chunk_mut() {
                Ok(chunk) => chunk.usage = None,
                Err(_) => {
                    out.push_back(Decoded::Malformed);
                    return;
                }
            }
        }
        out.push_back(Decoded::Chunk(event));
        if usage_only && self.finishes.complete() {
            // The usage chunk is the last one: finalize now rather than wait
            // for a `[DONE]` that may never come.
            out.push_back(Decoded::Done);
        }
    }
}

impl OpenAiEvents {
    /// An `event: error`, a `{"error": ...}` event, or an event that is
    /// no chunk at all (malformed).
    fn in_band_error(&self, event: &str, data: &str, out: &mut VecDeque<Decoded>) {
        let Ok(value) = serde_json::from_str::<Value>(data) else {
            out.push_back(Decoded::Malformed);
            return;
        };
        if event == "error" || value.get("error").is_some_and(|e| !e.is_null()) {
            let wrapped;
            let value = if value.get("error").is_some() {
                &value
            } else {
                wrapped = serde_json::json!({ "error": value });
                &wrapped
            };
            // The key is scrubbed by the stream reader.
            if let Some(e) = error::from_json(value, None) {
                out.push_back(Decoded::Error(e));
            }
            return;
        }
        out.push_back(Decoded::Malformed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::MalformedChunks;
    use crate::providers::transport::sse::SseChunks;
    use futures_util::StreamExt;

    fn events(strip_usage: bool) -> OpenAiEvents {
        OpenAiEvents::new(strip_usage)
    }

    /// The general way: a `Value` tree, the error check, then the wire.
    fn the_general_way(body: &[u8]) -> Option<ChatCompletion> {
        let value: Value = serde_json::from_slice(body).ok()?;
        if error::from_json(&value, None).is_some() {
            return None;
        }
        OpenAiWire.completion(value).ok()
    }

    #[test]
    fn a_completion_read_as_sent_is_what_the_general_way_reads_or_is_left_to_it() {
        let good = r#"{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi","x":[1]},"finish_reason":"stop","logprobs":null}],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3},"system_fingerprint":"f"}"#;
        for (body, as_sent) in [
            (good.to_owned(), true),
            (
                good.replace(r#""id":"c","#, r#""error":null,"id":"c","#),
                true,
            ),
            // The general way keeps the last of a repeated key: left to it.
            (good.replace(r#""id":"c","#, r#""id":"a","id":"c","#), false),
            // Nor is a repeated model or object forwarded (the key walk of
            // the server relies on it), escaped or not.
            (
                good.replace(r#""model":"m","#, r#""model":"a","model":"m","#),
                false,
            ),
            (
                good.replace(r#""model":"m","#, r#""model":"a","mod\u0065l":"m","#),
                false,
            ),
            (
                good.replace(r#""created":1,"#, r#""created":1,"object":"x","#),
                false,
            ),
            (
                good.replace(r#""created":1,"#, r#""created":1,"x":1,"x":2,"#),
                true,
            ),
            (
                good.replace(r#""id":"c","#, r#""error":{"message":"no"},"#),
                false,
            ),
            (good.replace(r#""id":"c","#, r#""error":"no","#), false),
            (
                good.replace(r#""content":"hi","#, "")
                    .replace(r#""stop""#, "null"),
                false,
            ),
            (
                good.replace("\"choices\":[{", "\"choices\":{\"a\":{")
                    .replace("}],\"usage", "}},\"usage"),
                false,
            ),
            (r#"{"choices":[]}"#.to_owned(), false),
            (r#"[1]"#.to_owned(), false),
            (good[..40].to_owned(), false),
        ] {
            let read = OpenAiWire.completion_as_sent(body.as_bytes());
            assert_eq!(read.is_some(), as_sent, "{body}");
            if let Some(read) = read {
                assert_eq!(Some(read), the_general_way(body.as_bytes()), "{body}");
            }
        }
    }

    /// A 200 SSE response that sends `events` and then stays open, silent.
    fn open_body(events: &[&str]) -> crate::providers::transport::upstream::Body {
        let frames: Vec<Result<bytes::Bytes, ChatError>> = events
            .iter()
            .map(|e| Ok(bytes::Bytes::from(format!("data: {e}\n\n"))))
            .collect();
        Box::pin(futures_util::stream::iter(frames).chain(futures_util::stream::pending()))
    }

    const WORD: &str = r#"{"choices":[{"index":0,"delta":{"content":"hi"}}]}"#;
    const FINISH: &str = r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#;
    const USAGE: &str =
        r#"{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}"#;

    #[tokio::test]
    async fn the_usage_chunk_after_the_finish_ends_the_stream_without_done() {
        let chunks = SseChunks::new(
            open_body(&[WORD, FINISH, USAGE]),
            events(false),
            "m",
            None,
            MalformedChunks::new(),
        );
        let items: Vec<_> = chunks.collect().await;
        assert_eq!(items.len(), 3);
        assert!(items[2].as_ref().unwrap().usage().is_some());
    }

    #[tokio::test]
    async fn usage_is_stripped_when_the_caller_did_not_ask() {
        let chunks = SseChunks::new(
            open_body(&[WORD, FINISH, USAGE]),
            events(true),
            "m",
            None,
            MalformedChunks::new(),
        );
        let items: Vec<_> = chunks.collect().await;
        assert_eq!(
            items.len(),
            2,
            "the usage-only chunk is dropped, and the stream ends"
        );
        assert!(items.iter().flatten().all(|c| c.usage().is_none()));
    }

    /// The forwarded JSON is the event's own text, trimmed as it is read:
    /// never the spaces around it, never a byte of anything else.
    #[test]
    fn a_chunk_keeps_its_trimmed_text_as_its_forwarded_json() {
        for data in [
            WORD.to_owned(),
            format!("  {WORD}\t"),
            format!("\n{WORD}"),
            format!("{WORD}  "),
        ] {
            let mut out = VecDeque::new();
            events(false).decode_owned("", data.clone(), &mut out);
            let Some(Decoded::Chunk(event)) = out.pop_front() else {
                panic!("{data:?} is a chunk");
            };
            assert_eq!(
                event.raw().map(|b| &b[..]),
                Some(WORD.as_bytes()),
                "{data:?}"
            );
            assert_eq!(event.to_chunk().text(), "hi");
        }
        let mut out = VecDeque::new();
        events(false).decode_owned("", " [DONE] ".to_owned(), &mut out);
        assert!(matches!(out.pop_front(), Some(Decoded::Done)));
    }
}
