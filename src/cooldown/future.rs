//! The response future of [`Cooldown`](super::Cooldown).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use pin_project::pin_project;
use tokio::time::Instant;
use tower_service::Service;

use super::store::{Admission, Permit, PermitKind, StoreFuture, Transition};
use super::Shared;
use crate::attempt::LogScope;
use crate::error::ChatError;
use crate::{ChatRequest, ChatResponse};

/// Response future of [`Cooldown`](super::Cooldown): asks the store, calls
/// the inner service if admitted, and reports the outcome to the store.
///
/// Dropping it while it holds the half-open probe frees the probe slot.
#[pin_project]
pub struct ResponseFuture<S>
where
    S: Service<ChatRequest>,
{
    #[pin]
    state: State<S, S::Future>,
    call: Call,
}

#[pin_project(project = StateProj)]
enum State<S, F> {
    Refused {
        until: Instant,
    },
    /// A remote store is deciding; `service` was polled ready.
    Admitting {
        admission: StoreFuture<Admission>,
        service: Option<S>,
        request: Option<ChatRequest>,
    },
    Calling {
        #[pin]
        future: F,
    },
    /// A remote store is applying the outcome.
    Recording {
        record: StoreFuture<Transition>,
        result: Option<Result<ChatResponse, ChatError>>,
    },
}

impl<S> ResponseFuture<S>
where
    S: Service<ChatRequest, Response = ChatResponse, Error = ChatError>,
{
    /// The store answered at once: `service` (polled ready) is called now if admitted.
    pub(super) fn decided(
        admission: Admission,
        service: &mut S,
        request: ChatRequest,
        mut call: Call,
    ) -> Self {
        let state = match admission {
            Admission::Refuse { until } => State::Refused { until },
            Admission::Admit(permit) => {
                call.admitted(permit);
                State::Calling {
                    future: service.call(request),
                }
            }
        };
        ResponseFuture { state, call }
    }

    pub(super) fn admitting(
        admission: StoreFuture<Admission>,
        service: S,
        request: ChatRequest,
        call: Call,
    ) -> Self {
        ResponseFuture {
            state: State::Admitting {
                admission,
                service: Some(service),
                request: Some(request),
            },
            call,
        }
    }
}

impl<S> Future for ResponseFuture<S>
where
    S: Service<ChatRequest, Response = ChatResponse, Error = ChatError>,
{
    type Output = Result<ChatResponse, ChatError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let mut this = self.as_mut().project();
            match this.state.as_mut().project() {
                StateProj::Refused { until } => return Poll::Ready(this.call.refused(*until)),
                StateProj::Admitting {
                    admission,
                    service,
                    request,
                } => match ready!(Pin::new(admission).poll(cx)) {
                    Admission::Refuse { until } => return Poll::Ready(this.call.refused(until)),
                    Admission::Admit(permit) => {
                        this.call.admitted(permit);
                        let mut service = service.take().expect("polled after completion");
                        let request = request.take().expect("polled after completion");
                        let future = service.call(request);
                        this.state.set(State::Calling { future });
                    }
                },
                StateProj::Calling { future } => {
                    let result = ready!(future.poll(cx));
                    let mut record = this.call.record(&result);
                    match record.now() {
                        Some(transition) => {
                            return Poll::Ready(this.call.finish(result, transition))
                        }
                        None => this.state.set(State::Recording {
                            record,
                            result: Some(result),
                        }),
                    }
                }
                StateProj::Recording { record, result } => {
                    let transition = ready!(Pin::new(record).poll(cx));
                    let result = result.take().expect("polled after completion");
                    return Poll::Ready(this.call.finish(result, transition));
                }
            }
        }
    }
}

impl<S> fmt::Debug for ResponseFuture<S>
where
    S: Service<ChatRequest>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("model", &self.call.model)
            .field("permit", &self.call.permit)
            .finish_non_exhaustive()
    }
}

/// One call's bookkeeping: its permit, and the attempt log.
pub(super) struct Call {
    shared: Arc<Shared>,
    model: String,
    log: LogScope,
    before: usize,
    start: Instant,
    permit: Option<Permit>,
    /// The outcome went to the store: nothing to release on drop.
    settled: bool,
}

impl Call {
    pub(super) fn new(shared: Arc<Shared>, model: String, log: LogScope, start: Instant) -> Self {
        Call {
            shared,
            model,
            before: log.len(),
            log,
            start,
            permit: None,
            settled: false,
        }
    }

    fn admitted(&mut self, permit: Permit) {
        match permit.kind {
            PermitKind::Normal => {}
            PermitKind::Probe => {
                tracing::info!(model = %self.model, "breaker half-open: probe admitted")
            }
            PermitKind::Forced => {
                tracing::debug!(model = %self.model, "breaker open: call forced through")
            }
        }
        self.permit = Some(permit);
    }

    fn refused(&self, until: Instant) -> Result<ChatResponse, ChatError> {
        let left = until.saturating_duration_since(Instant::now());
        tracing::debug!(
            model = %self.model,
            remaining_ms = left.as_millis() as u64,
            "breaker open: call refused"
        );
        self.logged(
            Err(ChatError::cooling_down(self.model.as_str(), until)),
            Duration::ZERO,
        )
    }

    /// Hands the outcome to the store.
    fn record(&mut self, result: &Result<ChatResponse, ChatError>) -> StoreFuture<Transition> {
        let Some(permit) = self.permit else {
            return StoreFuture::ready(Transition::Unchanged);
        };
        self.settled = true;
        let verdict = self.shared.verdict(result);
        let settings = self.shared.settings.get(&self.model);
        self.shared
            .store
            .record(&self.model, permit, verdict, settings, Instant::now())
    }

    fn finish(
        &self,
        result: Result<ChatResponse, ChatError>,
        transition: Transition,
    ) -> Result<ChatResponse, ChatError> {
        match transition {
            // `until` is a monotonic instant, meaningless in a log line:
            // the duration says when.
            Transition::Opened { cooldown, .. } => tracing::warn!(
                model = %self.model,
                cooldown_ms = cooldown.as_millis() as u64,
                reopened = self.permit.is_some_and(|p| p.kind != PermitKind::Normal),
                "breaker opened"
            ),
            Transition::Closed => tracing::info!(model = %self.model, "breaker closed"),
            Transition::Unchanged => {}
        }
        self.logged(result, self.start.elapsed())
    }

    /// Logs the outcome unless an inner layer did, and attaches the log.
    fn logged(
        &self,
        result: Result<ChatResponse, ChatError>,
        latency: Duration,
    ) -> Result<ChatResponse, ChatError> {
        self.log
            .record_if_missing(self.before, &self.model, &result, latency);
        let mut result = result;
        self.log.attach(&mut result);
        result
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        if let Some(permit) = self
            .permit
            .filter(|p| p.kind == PermitKind::Probe && !self.settled)
        {
            tracing::debug!(model = %self.model, "probe cancelled: slot released");
            self.shared.store.release(&self.model, permit);
        }
    }
}
