//! One counted call: settled with its usage, or with an estimate when it
//! ends without one.

use std::mem;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use futures_core::Stream;
use tokio::time::Instant;

use super::config::Limits;
use super::store::Grant;
use super::tokens::text_tokens;
use super::view::Shared;
use crate::chat::{ChatError, ChatStream, ErrorKind, SkipReason, StreamEvent};
use crate::ChatResponse;

/// One counted call, settled with the usage the response reports.
///
/// Dropped unsettled (the call was cancelled, its answer reported no usage,
/// or its stream ended, failed or was dropped before a usage chunk), it
/// settles what the call probably used: the request, the prompt's estimate
/// and the answer's text seen so far, so the completion budget reserved for
/// it is free again at once rather than when the window ends.
pub(super) struct Guard {
    shared: Arc<Shared>,
    model: Arc<str>,
    grant: Option<Grant>,
    /// The prompt's estimated tokens.
    prompt: u64,
    /// Bytes of answer text seen (settled as an estimate when no usage came).
    answered: usize,
}

impl Guard {
    pub(super) fn new(shared: Arc<Shared>, model: Arc<str>, grant: Grant, prompt: u64) -> Self {
        Guard {
            shared,
            model,
            grant: Some(grant),
            prompt,
            answered: 0,
        }
    }

    pub(super) fn finish(
        mut self,
        result: Result<ChatResponse, ChatError>,
    ) -> Result<ChatResponse, ChatError> {
        match result {
            Ok(mut response) => {
                if let Some(stream) = response.stream_mut() {
                    let inner = mem::replace(stream, ChatStream::from_items(Vec::new()));
                    *stream = ChatStream::from_events(Metered {
                        inner,
                        guard: Some(self),
                    });
                } else if let Some(usage) = response.usage() {
                    self.settle(1, usage.total_tokens);
                } else {
                    // No usage reported: dropping settles an estimate of the answer.
                    self.answered = response.text().map_or(0, |t| t.len());
                }
                Ok(response)
            }
            Err(e) => {
                // A refusal below never reached the provider; a failed call
                // counts as a request, but its tokens were not used.
                let requests = u64::from(e.kind() != ErrorKind::CoolingDown);
                self.settle(requests, 0);
                Err(e)
            }
        }
    }

    fn settle(&mut self, requests: u64, tokens: u64) {
        if let Some(grant) = self.grant.take() {
            self.shared
                .store
                .settle(&self.model, grant, requests, tokens);
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let used = self.prompt.saturating_add(text_tokens(self.answered));
        self.settle(1, used);
    }
}

/// A stream that settles its call's usage when the usage chunk passes, or
/// an estimate when the stream ends or is dropped without one.
struct Metered {
    inner: ChatStream,
    guard: Option<Guard>,
}

impl Stream for Metered {
    type Item = Result<StreamEvent, ChatError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let item = ready!(self.inner.poll_event(cx));
        match &item {
            Some(Ok(chunk)) => {
                if let Some(guard) = &mut self.guard {
                    guard.answered = guard.answered.saturating_add(chunk.text_bytes());
                    if let Some(usage) = chunk.usage() {
                        guard.settle(1, usage.total_tokens);
                    }
                }
            }
            Some(Err(_)) | None => self.guard = None,
        }
        Poll::Ready(item)
    }
}

/// The refusal of a deployment at its limit: like a cooling model, it is
/// skipped without an upstream call.
pub(super) fn over_limit(model: &str, limits: &Limits, until: Instant) -> ChatError {
    let mut parts = Vec::new();
    if let Some(rpm) = limits.rpm {
        parts.push(format!("rpm {rpm}"));
    }
    if let Some(tpm) = limits.tpm {
        parts.push(format!("tpm {tpm}"));
    }
    let left = until.saturating_duration_since(Instant::now());
    let mut e = ChatError::cooling_down(model, until).with_skip_reason(SkipReason::Limited);
    e.set_message(format!(
        "at its limit ({}) until the minute ends in {left:?}",
        parts.join(", ")
    ));
    e
}
