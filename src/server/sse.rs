//! Server-sent events in the exact bytes OpenAI clients parse:
//! `data: {chunk}\n\n` ... `data: [DONE]\n\n`, or an in-band error event and
//! no `[DONE]` after a fault.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_core::Stream;
use serde_json::value::RawValue;
use serde_json::Map;

use super::error::ApiError;
use super::request_log::{Outcome, RequestLog};
use crate::chat::{ChatChunk, ChatCompletion, ChatStream, ChunkChoice, Delta, ToolCallDelta};
use crate::chat::{FunctionCallDelta, StreamEvent, StreamFault};
use crate::ChatError;

const DONE: &[u8] = b"data: [DONE]\n\n";

/// Turns a chat stream into SSE frames.
///
/// A chunk that no layer changed is sent as the JSON the provider sent,
/// with only its `model` replaced ([`forward`]): no second encoding, and
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
        let model_json = match model.is_empty() {
            true => String::new(),
            false => serde_json::Value::from(model.as_str()).to_string(),
        };
        SseBody {
            chunks,
            model,
            model_json,
            include_usage,
            sent: 0,
            done: false,
            log,
        }
    }

    /// The frame for one chunk, or `None` when the chunk is dropped.
    fn encode(&mut self, mut event: StreamEvent) -> Option<Result<Bytes, ChatError>> {
        if let Some(usage) = &event.usage {
            self.log.usage(usage);
        }
        if !self.include_usage && event.usage.is_some() {
            if event.choices.is_empty() {
                return None;
            }
            event.chunk_mut().usage = None;
        }
        if event.has_content() {
            self.log.first_token();
        }
        if let Some(frame) = event.raw().and_then(|raw| forward(raw, &self.model_json)) {
            return Some(Ok(frame));
        }
        let mut chunk = event.into_chunk();
        if !self.model.is_empty() {
            chunk.model.clone_from(&self.model);
        }
        if chunk.object.is_empty() {
            chunk.object = "chat.completion.chunk".to_owned();
        }
        let mut frame = b"data: ".to_vec();
        Some(match serde_json::to_writer(&mut frame, &chunk) {
            Ok(()) => {
                frame.extend_from_slice(b"\n\n");
                Ok(Bytes::from(frame))
            }
            Err(e) => Err(ChatError::stream_interrupted(
                StreamFault::Protocol,
                self.sent,
                format!("chunk could not be encoded: {e}"),
            )),
        })
    }

    fn fault(&mut self, error: ChatError) -> Bytes {
        self.done = true;
        let api = ApiError::from_chat_error(&error);
        // Not the 200 its headers said: the answer is incomplete.
        self.log.status(api.status().as_u16());
        self.log.finish(Outcome::Failed(Some(error.kind())));
        Bytes::from(format!("data: {}\n\n", api.to_json()))
    }
}

impl Stream for SseBody {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if self.done {
                return Poll::Ready(None);
            }
            // In the call's span: a stream's later attempts (recovery after
            // a cut) are the call's children too.
            let polled = {
                let SseBody { chunks, log, .. } = &mut *self;
                let _entered = log.span().enter();
                chunks.poll_event(cx)
            };
            match polled {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(chunk))) => match self.encode(chunk) {
                    None => continue,
                    Some(Ok(frame)) => {
                        self.sent += 1;
                        return Poll::Ready(Some(Ok(frame)));
                    }
                    Some(Err(e)) => return Poll::Ready(Some(Ok(self.fault(e)))),
                },
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Ok(self.fault(e)))),
                Poll::Ready(None) => {
                    self.done = true;
                    self.log.finish(Outcome::Completed);
                    return Poll::Ready(Some(Ok(Bytes::from_static(DONE))));
                }
            }
        }
    }
}

/// The frame for a chunk the provider sent as `raw` (a JSON object), with
/// its `model` replaced by `model_json` (a JSON string; empty: kept).
///
/// `None` when the typed encoding must write the chunk instead: the object
/// has no `model` or no `object` of its own (the encoding adds them), names
/// one twice, or cannot be read.
pub(crate) fn forward(raw: &[u8], model_json: &str) -> Option<Bytes> {
    #[derive(serde::Deserialize)]
    struct Names<'a> {
        #[serde(borrow, default)]
        model: Option<&'a RawValue>,
        #[serde(borrow, default)]
        object: Option<&'a RawValue>,
    }
    let names: Names<'_> = serde_json::from_slice(raw).ok()?;
    let object = names.object?.get();
    if !object.starts_with('"') || object == "\"\"" {
        return None;
    }
    let mut frame = Vec::with_capacity(raw.len() + model_json.len() + 8);
    frame.extend_from_slice(b"data: ");
    if model_json.is_empty() {
        frame.extend_from_slice(raw);
    } else {
        let model = names.model?.get();
        let start = (model.as_ptr() as usize).checked_sub(raw.as_ptr() as usize)?;
        let end = start.checked_add(model.len())?;
        frame.extend_from_slice(raw.get(..start)?);
        frame.extend_from_slice(model_json.as_bytes());
        frame.extend_from_slice(raw.get(end..)?);
    }
    frame.extend_from_slice(b"\n\n");
    Some(Bytes::from(frame))
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

    use super::forward;
    use crate::chat::ChatChunk;

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
                let mut seed = seed;
                for i in (1..fields.len()).rev() {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                    fields.swap(i, (seed >> 33) as usize % (i + 1));
                }
                let sep = if pretty { " ,\n " } else { "," };
                let body = fields
                    .iter()
                    .map(|(k, v)| format!("\"{k}\"{}{v}", if pretty { " : " } else { ":" }))
                    .collect::<Vec<_>>()
                    .join(sep);
                format!("{{{body}}}")
            })
    }

    proptest! {
        /// A forwarded chunk is the provider's JSON with only `model`
        /// changed, and reads as the same chunk as the typed encoding.
        #[test]
        fn a_forwarded_chunk_is_the_providers_with_the_served_model(raw in chunk(), served in text()) {
            let served_json = Value::from(served.as_str()).to_string();
            let frame = forward(raw.as_bytes(), &served_json);
            let mut original: Value = serde_json::from_str(&raw).unwrap();
            if original.get("model").is_none() {
                prop_assert!(frame.is_none(), "no model of its own: the typed encoding adds one");
                return Ok(());
            }
            let frame = frame.expect("forwarded");
            let json = frame.strip_prefix(b"data: ").unwrap().strip_suffix(b"\n\n").unwrap();
            let forwarded: Value = serde_json::from_slice(json).unwrap();
            original["model"] = Value::from(served.as_str());
            prop_assert_eq!(&forwarded, &original);
            let mut typed: ChatChunk = serde_json::from_str(&raw).unwrap();
            typed.model = served;
            prop_assert_eq!(serde_json::from_slice::<ChatChunk>(json).unwrap(), typed);
        }
    }

    #[test]
    fn a_chunk_without_object_or_named_twice_is_not_forwarded() {
        let model = "\"p/m\"";
        assert!(forward(br#"{"model":"m","choices":[]}"#, model).is_none());
        assert!(forward(br#"{"object":"","model":"m","choices":[]}"#, model).is_none());
        assert!(forward(br#"{"object":"x","model":"a","model":"b"}"#, model).is_none());
        assert!(forward(b"not json", model).is_none());
        let kept = forward(br#"{"object":"x","model":"m"}"#, "").unwrap();
        assert_eq!(&kept[..], b"data: {\"object\":\"x\",\"model\":\"m\"}\n\n");
    }
}
