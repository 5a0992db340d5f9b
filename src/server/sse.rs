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
use crate::response::{ChatChunk, ChatCompletion, ChatStream, ChunkChoice, Delta, ToolCallDelta};
use crate::{ChatError, FunctionCallDelta, StreamFault};

const DONE: &[u8] = b"data: [DONE]\n\n";

/// Turns a chat stream into SSE frames.
///
/// The caller sees usage only if it asked (`stream_options.include_usage`):
/// a lower layer may ask upstream regardless, so otherwise `usage` is removed
/// from every chunk and usage-only chunks are dropped. Every chunk names the
/// served model, or, for [labelled](crate::streaming::LabelledChunks)
/// streams, the model that produced it.
pub(crate) struct SseBody {
    chunks: ChatStream,
    model: String,
    include_usage: bool,
    labelled: bool,
    sent: usize,
    done: bool,
}

impl SseBody {
    pub(crate) fn new(chunks: ChatStream, model: String, include_usage: bool) -> Self {
        SseBody {
            chunks,
            model,
            include_usage,
            labelled: false,
            sent: 0,
            done: false,
        }
    }

    /// Keeps the model each chunk names (the stack labelled them).
    pub(crate) fn labelled(mut self, labelled: bool) -> Self {
        self.labelled = labelled;
        self
    }

    /// The frame for one chunk, or `None` when the chunk is dropped.
    fn encode(&self, mut chunk: ChatChunk) -> Option<Result<Bytes, ChatError>> {
        if !self.include_usage && chunk.usage.take().is_some() && chunk.choices.is_empty() {
            return None;
        }
        let keep_label = self.labelled && !chunk.model.is_empty();
        if !self.model.is_empty() && !keep_label {
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
        tracing::warn!(
            model = &*self.model,
            chunks = self.sent,
            kind = %error.kind(),
            "stream ended with an error event",
        );
        let json = ApiError::from_chat_error(&error).to_json();
        Bytes::from(format!("data: {json}\n\n"))
    }
}

impl Stream for SseBody {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if self.done {
                return Poll::Ready(None);
            }
            match Pin::new(&mut self.chunks).poll_next(cx) {
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
                    tracing::debug!(model = &*self.model, chunks = self.sent, "stream finished");
                    return Poll::Ready(Some(Ok(Bytes::from_static(DONE))));
                }
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
