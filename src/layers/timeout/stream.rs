//! The committed stream of one attempt, watched: idle and total deadlines,
//! and how it ended, written into the attempt log.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;
use tokio::time::{Instant, Sleep};

use crate::chat::streaming::record_stream_fault;
use crate::chat::{
    AttemptLog, ChatError, ChatStream, Finishes, MalformedChunks, StreamEvent, StreamFault,
    TimeoutKind,
};

/// What an attempt's stream is watched for, decided when the attempt starts.
#[derive(Clone, Debug)]
pub(super) struct StreamPlan {
    pub(super) idle: Option<Duration>,
    pub(super) total_at: Option<Instant>,
    /// Counts this attempt's malformed events (from `base`).
    pub(super) malformed: MalformedChunks,
    pub(super) base: usize,
}

impl StreamPlan {
    /// Unreadable events (each a fault) in this attempt so far.
    pub(super) fn malformed(&self) -> usize {
        self.malformed.count().saturating_sub(self.base)
    }
}

/// Passes the chunks on; ends the stream with a `Stall` item when the idle
/// or total deadline passes, and records a fault and the malformed count in
/// the attempt's log entry.
pub(super) struct Guarded {
    inner: ChatStream,
    timer: Option<Pin<Box<Sleep>>>,
    plan: StreamPlan,
    model: String,
    log: AttemptLog,
    /// The attempt's entry in the log.
    index: usize,
    started: Instant,
    delivered: usize,
    finishes: Finishes,
    done: bool,
}

impl Guarded {
    pub(super) fn new(
        inner: ChatStream,
        plan: StreamPlan,
        model: String,
        log: AttemptLog,
        index: usize,
        started: Instant,
    ) -> Self {
        let mut guarded = Guarded {
            inner,
            timer: None,
            plan,
            model,
            log,
            index,
            started,
            delivered: 0,
            finishes: Finishes::default(),
            done: false,
        };
        if let Some(at) = guarded.next_deadline() {
            guarded.timer = Some(Box::pin(tokio::time::sleep_until(at)));
        }
        guarded
    }

    fn next_deadline(&self) -> Option<Instant> {
        let idle = self.plan.idle.and_then(|d| Instant::now().checked_add(d));
        match (idle, self.plan.total_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn on_chunk(&mut self, chunk: &StreamEvent) {
        if chunk.has_content() {
            self.delivered += 1;
        }
        chunk.note(&mut self.finishes);
        if self.timer.is_some() {
            let next = self.next_deadline();
            if let (Some(timer), Some(at)) = (self.timer.as_mut(), next) {
                timer.as_mut().reset(at);
            }
        }
    }

    /// The stream ended (normally or not): the log gets the malformed count.
    fn close(&mut self) {
        self.done = true;
        self.timer = None;
        self.inner = ChatStream::from_items(Vec::new());
        let malformed = self.plan.malformed();
        if malformed > 0 {
            self.log.amend(self.index, |a| a.malformed = malformed);
        }
    }

    fn fail(&mut self, mut error: ChatError) -> ChatError {
        error.set_model(self.model.as_str());
        self.close();
        record_stream_fault(&self.log, self.index, &error, Some(self.started.elapsed()));
        error.set_attempts(self.log.snapshot());
        error
    }

    /// A deadline passed with no chunk: a stall, unless the answer was complete.
    fn expired(&mut self) -> Option<ChatError> {
        let now = Instant::now();
        let total = self.plan.total_at.is_some_and(|at| at <= now);
        if !total && self.finishes.complete() {
            tracing::debug!(
                model = &*self.model,
                "no [DONE] after the finish reason: ending the stream"
            );
            self.close();
            return None;
        }
        let (which, detail) = if total {
            (
                TimeoutKind::Attempt,
                format!(
                    "the stream's total deadline passed after {:?}",
                    self.started.elapsed()
                ),
            )
        } else {
            let idle = self.plan.idle.unwrap_or_default();
            (TimeoutKind::Idle, format!("no chunk for {idle:?}"))
        };
        tracing::debug!(model = &*self.model, deadline = %which, chunks = self.delivered, "stream stalled");
        let error = ChatError::stream_interrupted(StreamFault::Stall, self.delivered, detail)
            .with_timeout_kind(which);
        Some(self.fail(error))
    }
}

impl Stream for Guarded {
    type Item = Result<StreamEvent, ChatError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        // A chunk that is ready wins a tie with the deadline.
        match this.inner.poll_event(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                this.on_chunk(&chunk);
                return Poll::Ready(Some(Ok(chunk)));
            }
            Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(this.fail(e)))),
            Poll::Ready(None) => {
                this.close();
                return Poll::Ready(None);
            }
            Poll::Pending => {}
        }
        match this.timer.as_mut().map(|t| t.as_mut().poll(cx)) {
            Some(Poll::Ready(())) => Poll::Ready(this.expired().map(Err)),
            _ => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::ChatChunk;
    use futures_util::StreamExt;
    use serde_json::json;

    fn chunk(value: serde_json::Value) -> ChatChunk {
        serde_json::from_value(value).unwrap()
    }

    /// `chunks`, then silence.
    fn guarded(chunks: Vec<ChatChunk>, log: &AttemptLog) -> Guarded {
        log.push(crate::chat::Attempt::success("p/m", Duration::ZERO));
        let inner = futures_util::stream::iter(chunks.into_iter().map(Ok))
            .chain(futures_util::stream::pending());
        let plan = StreamPlan {
            idle: Some(Duration::from_secs(10)),
            total_at: None,
            malformed: MalformedChunks::new(),
            base: 0,
        };
        Guarded::new(
            ChatStream::new(inner),
            plan,
            "p/m".into(),
            log.clone(),
            0,
            Instant::now(),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn silence_after_content_is_a_stall_recorded_in_the_log() {
        let log = AttemptLog::default();
        let word = chunk(json!({"choices": [{"index": 0, "delta": {"content": "hi"}}]}));
        let items: Vec<_> = guarded(vec![word.clone(), word], &log).collect().await;
        let error = items[2].as_ref().unwrap_err();
        assert_eq!(error.stream_fault(), Some((StreamFault::Stall, 2)));
        assert_eq!(error.timeout_kind(), Some(TimeoutKind::Idle));
        assert_eq!(error.model(), Some("p/m"));
        let attempt = &log.snapshot()[0];
        assert_eq!(attempt.error, Some(crate::ErrorKind::StreamInterrupted));
        assert_eq!(attempt.latency, Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn silence_after_the_finish_reason_ends_the_stream_normally() {
        let log = AttemptLog::default();
        let word = chunk(json!({"choices": [{"index": 0, "delta": {"content": "hi"}}]}));
        let finish =
            chunk(json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}));
        let items: Vec<_> = guarded(vec![word, finish], &log).collect().await;
        assert_eq!(items.len(), 2);
        assert!(items.iter().all(Result::is_ok));
        assert!(log.snapshot()[0].is_success());
    }
}
