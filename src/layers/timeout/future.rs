//! The response future of [`Timeout`](super::Timeout).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project::pin_project;
use tokio::time::{Instant, Sleep};

use super::stream::{Guarded, StreamPlan};
use super::AdaptiveFirstToken;
use crate::chat::{ChatError, LogScope, ResponseBody, TimeoutKind};
use crate::ChatResponse;

/// Response future of [`Timeout`](super::Timeout): the inner future raced
/// against an inline sleep.
#[pin_project]
pub struct ResponseFuture<F> {
    /// `None` when the deadline had passed before the call.
    #[pin]
    inner: Option<F>,
    /// `None` when no deadline applies.
    #[pin]
    sleep: Option<Sleep>,
    which: TimeoutKind,
    call: Call,
}

/// What the future needs to name and log the outcome.
pub(super) struct Call {
    pub(super) model: String,
    pub(super) log: LogScope,
    pub(super) before: usize,
    pub(super) start: Instant,
    /// For a stream request: how its stream is watched once committed.
    pub(super) stream: Option<StreamPlan>,
    /// For a stream with a learned first-token deadline: what it learns from.
    pub(super) adaptive: Option<AdaptiveFirstToken>,
}

impl<F> ResponseFuture<F> {
    pub(super) fn new(inner: F, deadline: Option<(Instant, TimeoutKind)>, call: Call) -> Self {
        ResponseFuture {
            inner: Some(inner),
            sleep: deadline.map(|(at, _)| tokio::time::sleep_until(at)),
            which: deadline.map_or(TimeoutKind::Attempt, |(_, which)| which),
            call,
        }
    }

    pub(super) fn expired(call: Call, which: TimeoutKind) -> Self {
        ResponseFuture {
            inner: None,
            sleep: None,
            which,
            call,
        }
    }
}

impl<F> Future for ResponseFuture<F>
where
    F: Future<Output = Result<ChatResponse, ChatError>>,
{
    type Output = Result<ChatResponse, ChatError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Some(inner) = this.inner.as_pin_mut() else {
            return Poll::Ready(Err(this.call.expired(*this.which)));
        };
        // The answer wins a tie with the deadline, as in tower's timeout.
        if let Poll::Ready(result) = inner.poll(cx) {
            return Poll::Ready(this.call.finish(result));
        }
        match this.sleep.as_pin_mut() {
            Some(sleep) => match sleep.poll(cx) {
                Poll::Ready(()) => Poll::Ready(this.call.fired(*this.which)),
                Poll::Pending => Poll::Pending,
            },
            None => Poll::Pending,
        }
    }
}

impl Call {
    /// Passes the inner outcome on, logged if no inner layer did.
    fn finish(&self, result: Result<ChatResponse, ChatError>) -> Result<ChatResponse, ChatError> {
        let model = match &result {
            Ok(response) => response.model(),
            Err(e) => e.model().unwrap_or(&self.model),
        };
        self.log
            .record_if_missing(self.before, model, &result, self.start.elapsed());
        let plan = self.stream.as_ref();
        let mut result = match result {
            Ok(mut response) => {
                // The entry of the attempt that served is the last one.
                let index = self.log.len().saturating_sub(1);
                if let (Some(adaptive), ResponseBody::Stream(_)) = (&self.adaptive, response.body())
                {
                    adaptive.observe(&self.model, self.start.elapsed());
                }
                if let (Some(plan), ResponseBody::Stream(_)) = (plan, response.body()) {
                    self.watch(&mut response, plan.clone(), index);
                } else if let Some(plan) = plan {
                    self.note_malformed(plan, index);
                }
                Ok(response)
            }
            Err(e) => {
                if let Some(plan) = plan {
                    self.note_malformed(plan, self.log.len().saturating_sub(1));
                }
                Err(e)
            }
        };
        self.log.attach(&mut result);
        result
    }

    /// Wraps the committed stream so its idle and total deadlines apply and
    /// its end is written into the attempt's log entry.
    fn watch(&self, response: &mut ChatResponse, plan: StreamPlan, index: usize) {
        let model = response.model().to_owned();
        let Some(slot) = response.stream_mut() else {
            return;
        };
        let stream = std::mem::replace(slot, crate::chat::ChatStream::from_items(Vec::new()));
        let guarded = Guarded::new(
            stream,
            plan,
            model,
            self.log.log().clone(),
            index,
            self.start,
        );
        *slot = crate::chat::ChatStream::from_events(guarded);
    }

    fn note_malformed(&self, plan: &StreamPlan, index: usize) {
        let malformed = plan.malformed();
        if malformed > 0 && self.log.len() > self.before {
            self.log.amend(index, |a| a.malformed = malformed);
        }
    }

    /// The deadline passed while the inner call was running.
    fn fired(&self, which: TimeoutKind) -> Result<ChatResponse, ChatError> {
        let elapsed = self.start.elapsed();
        tracing::debug!(
            model = &*self.model,
            deadline = %which,
            elapsed_ms = elapsed.as_millis() as u64,
            "deadline fired"
        );
        // Its first token would have come later still: a lower bound that
        // lets a slowed-down model raise its learned deadline.
        if let (Some(adaptive), TimeoutKind::FirstToken) = (&self.adaptive, which) {
            adaptive.observe(&self.model, elapsed);
        }
        self.finish(Err(
            ChatError::timeout(which, elapsed).with_model(self.model.as_str())
        ))
    }

    /// The deadline had passed before the call: nothing went upstream, so
    /// nothing is logged.
    fn expired(&self, which: TimeoutKind) -> ChatError {
        tracing::debug!(model = &*self.model, deadline = %which, "deadline already passed");
        let mut e = ChatError::timeout(which, Duration::ZERO).with_model(self.model.as_str());
        e.set_message(format!("{which} had passed before the call started"));
        self.log.attach_error(&mut e);
        e
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("model", &self.call.model)
            .field("deadline", &self.sleep.as_ref().map(|s| s.deadline()))
            .field("which", &self.which)
            .finish_non_exhaustive()
    }
}
