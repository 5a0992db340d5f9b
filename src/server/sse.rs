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
use crate::chat::{ChatChunk, ChatCompletion, ChatStream, ChunkChoice, Delta, ToolCallDelta};
use crate::chat::{FunctionCallDelta, StreamFault};
use crate::ChatError;

const DONE: &[u8] = b"data: [DONE]\n\n";

/// Turns a chat stream into SSE frames.
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
        SseBody {
            chunks,
            model,
            include_usage,
            sent: 0,
            done: false,
            log,
        }
    }

    /// The frame for one chunk, or `None` when the chunk is dropped.
    fn encode(&mut self, mut chunk: ChatChunk) -> Option<Result<Bytes, ChatError>> {
        if let Some(usage) = &chunk.usage {
            self.log.usage(usage);
        }
        if !self.include_usage && chunk.usage.take().is_some() && chunk.choices.is_empty() {
            return None;
        }
        if chunk.has_content() {
            self.log.first_token();
        }
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
                Pin::new(chunks).poll_next(cx)
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
