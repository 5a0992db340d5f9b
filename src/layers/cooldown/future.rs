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

use super::outcome::{self, Pending};
use super::store::{Admission, Permit, PermitKind, Transition};
use super::stream::Judged;
use super::throttle::Shed;
use super::Shared;
use crate::chat::ChatStream;
use crate::chat::{ChatError, LogScope, SkipReason};
use crate::layers::health::SingleAttempt;
use crate::store::StoreFuture;
use crate::{ChatRequest, ChatResponse};

/// Response future of [`Cooldown`](super::Cooldown): asks the store, calls
/// the inner service if admitted, and reports the outcome to the store.
///
/// Dropping it while it holds the half-open probe frees the probe slot. A
/// streamed response carries the permit on: its verdict is recorded when the
/// stream ends (see the [module docs](super)).
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
    /// Refused by the breaker or shed by the throttle.
    Refused { error: Option<ChatError> },
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
        mut request: ChatRequest,
        mut call: Call,
    ) -> Self {
        let state = match admission {
            Admission::Refuse { until } => State::Refused {
                error: Some(call.refused(until)),
            },
            Admission::Admit(permit) => match call.admitted(permit, &mut request) {
                Ok(()) => State::Calling {
                    future: service.call(request),
                },
                Err(shed) => State::Refused { error: Some(shed) },
            },
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
                StateProj::Refused { error } => {
                    let error = error.take().expect("polled after completion");
                    return Poll::Ready(this.call.logged(Err(error), Duration::ZERO));
                }
                StateProj::Admitting {
                    admission,
                    service,
                    request,
                } => match ready!(Pin::new(admission).poll(cx)) {
                    Admission::Refuse { until } => {
                        let error = this.call.refused(until);
                        return Poll::Ready(this.call.logged(Err(error), Duration::ZERO));
                    }
                    Admission::Admit(permit) => {
                        let mut request = request.take().expect("polled after completion");
                        if let Err(shed) = this.call.admitted(permit, &mut request) {
                            return Poll::Ready(this.call.logged(Err(shed), Duration::ZERO));
                        }
                        let mut service = service.take().expect("polled after completion");
                        let future = service.call(request);
                        this.state.set(State::Calling { future });
                    }
                },
                StateProj::Calling { future } => {
                    let mut result = ready!(future.poll(cx));
                    let mut record = this.call.record(&mut result);
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
            .field("model", &self.call.pending.model)
            .field("permit", &self.call.pending.permit)
            .finish_non_exhaustive()
    }
}

/// One call's bookkeeping: its permit, and the attempt log.
pub(super) struct Call {
    pending: Pending,
    log: LogScope,
    before: usize,
    start: Instant,
}

impl Call {
    pub(super) fn new(shared: Arc<Shared>, model: String, log: LogScope, start: Instant) -> Self {
        Call {
            pending: Pending::new(shared, model),
            before: log.len(),
            log,
            start,
        }
    }

    fn model(&self) -> &str {
        &self.pending.model
    }

    /// Takes the permit unless the throttle sheds the call; a call let
    /// through a breaker that is not closed is marked a single attempt.
    fn admitted(&mut self, permit: Permit, request: &mut ChatRequest) -> Result<(), ChatError> {
        let shared = &self.pending.shared;
        let model = &self.pending.model;
        let probe = permit.kind == PermitKind::Probe;
        if let Some(throttles) = &shared.throttles {
            let now = Instant::now();
            if let Shed::Yes { requests, accepts } = throttles.admit(model, probe, now) {
                tracing::debug!(model, requests, accepts, "shed by adaptive throttling");
                let mut e = ChatError::cooling_down(model.as_str(), throttles.retry_at(now))
                    .with_skip_reason(SkipReason::Shed);
                e.set_message(format!(
                    "shed by adaptive throttling: {accepts} of the last {requests} calls answered"
                ));
                return Err(e);
            }
        }
        match permit.kind {
            PermitKind::Normal => {}
            PermitKind::Probe => {
                tracing::info!(model, "breaker half-open: probe admitted")
            }
            PermitKind::Forced => {
                tracing::debug!(model, "breaker open: call forced through")
            }
        }
        if permit.kind != PermitKind::Normal {
            request.extensions_mut().insert(SingleAttempt);
        }
        self.pending.permit = Some(permit);
        Ok(())
    }

    fn refused(&self, until: Instant) -> ChatError {
        let left = until.saturating_duration_since(Instant::now());
        tracing::debug!(
            model = self.model(),
            remaining_ms = left.as_millis() as u64,
            "breaker open: call refused"
        );
        ChatError::cooling_down(self.model(), until)
    }

    /// Hands the outcome to the store; a stream's permit goes with the
    /// stream instead, which is judged when it ends.
    fn record(&mut self, result: &mut Result<ChatResponse, ChatError>) -> StoreFuture<Transition> {
        if let Ok(response) = result {
            if let Some(stream) = response.stream_mut() {
                let inner = std::mem::replace(stream, ChatStream::from_items(Vec::new()));
                *stream = ChatStream::from_events(Judged::new(inner, self.pending.take()));
                return StoreFuture::ready(Transition::Unchanged);
            }
        }
        let verdict = self.pending.shared.verdict(result);
        self.pending.record(verdict)
    }

    fn finish(
        &self,
        result: Result<ChatResponse, ChatError>,
        transition: Transition,
    ) -> Result<ChatResponse, ChatError> {
        let kind = self.pending.permit.map(|p| p.kind);
        outcome::report(&self.pending.shared, self.model(), kind, transition);
        self.logged(result, self.start.elapsed())
    }

    /// Logs the outcome unless an inner layer did; attaches the log if this
    /// layer owns it (is the outermost that keeps one).
    fn logged(
        &self,
        result: Result<ChatResponse, ChatError>,
        latency: Duration,
    ) -> Result<ChatResponse, ChatError> {
        self.log
            .record_if_missing(self.before, self.model(), &result, latency);
        let mut result = result;
        self.log.attach(&mut result);
        result
    }
}
