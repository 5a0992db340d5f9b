//! The engine's future: one inner call per candidate until one serves.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use pin_project::pin_project;
use tokio::time::Instant;
use tower_service::Service;
use tracing::Span;

use super::candidates::Candidates;
use super::recover::{Continuation, Recover};
use super::{CandidateSource, RoutePolicy};
use crate::chat::{AttemptLog, ChatError, ChatRequest, ChatResponse, MaxUpstreamCalls};
use crate::layers::health::Routed;

/// Either the inner service's own future (the request was not routed) or the
/// engine trying candidates in turn.
#[pin_project(project = RouteProj)]
pub(crate) enum RouteFuture<S, C>
where
    S: Service<ChatRequest>,
{
    Passthrough {
        #[pin]
        future: S::Future,
    },
    Routing {
        #[pin]
        call: Option<S::Future>,
        /// Taken by mid-stream recovery when a stream serves.
        state: Option<Box<Routing<S, C>>>,
    },
}

/// Everything the engine keeps between attempts. Boxed: one allocation costs
/// less than moving ~600 bytes through every layer's future on the way out.
pub(crate) struct Routing<S, C> {
    svc: S,
    svc_ready: bool,
    candidates: Candidates<C>,
    span: Span,
    /// When the first call started (cooling skips before it take no time).
    started: Option<Instant>,
    /// The candidate being called: its id and the log length before the call.
    current: Option<(Arc<str>, usize)>,
    /// When the call to it was made.
    attempt_started: Option<Instant>,
    /// The request waiting for the service to be ready.
    pending: Option<ChatRequest>,
    last_error: Option<ChatError>,
    done: bool,
}

impl<S, C> RouteFuture<S, C>
where
    S: Service<ChatRequest, Response = ChatResponse, Error = ChatError>,
    C: CandidateSource,
{
    /// The inner call for a request no route applies to.
    pub(crate) fn passthrough(future: S::Future) -> Self {
        RouteFuture::Passthrough { future }
    }

    /// Starts routing `request` over `source`; `svc` must have been polled ready.
    pub(crate) fn route(
        svc: S,
        mut request: ChatRequest,
        source: C,
        policy: Arc<RoutePolicy>,
        span: Span,
    ) -> Self {
        let log = AttemptLog::enter(&mut request);
        let extensions = request.extensions_mut();
        extensions.insert(Routed);
        if let (Some(cap), None) = (
            policy.max_upstream_calls,
            extensions.get::<MaxUpstreamCalls>(),
        ) {
            extensions.insert(MaxUpstreamCalls(cap));
        }
        RouteFuture::Routing {
            call: None,
            state: Some(Box::new(Routing {
                svc,
                svc_ready: true,
                candidates: Candidates::new(request, source, policy, log),
                span,
                started: None,
                current: None,
                attempt_started: None,
                pending: None,
                last_error: None,
                done: false,
            })),
        }
    }
}

impl<S, C> Future for RouteFuture<S, C>
where
    S: Service<ChatRequest, Response = ChatResponse, Error = ChatError> + Send + 'static,
    S::Future: Send + 'static,
    C: CandidateSource,
{
    type Output = Result<ChatResponse, ChatError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let (mut call, state) = match self.project() {
            RouteProj::Passthrough { future } => return future.poll(cx),
            RouteProj::Routing { call, state } => (call, state),
        };
        let st = state.as_mut().expect("RouteFuture polled after completion");
        assert!(!st.done, "RouteFuture polled after completion");
        let span = st.span.clone();
        let _entered = span.enter();
        loop {
            if let Some(future) = call.as_mut().as_pin_mut() {
                let result = ready!(future.poll(cx));
                call.set(None);
                match st.settle(result) {
                    Some(Ok(response)) if response.is_stream() && st.candidates.recovers() => {
                        let routing = state.take().expect("the routing state");
                        let rest = Continuation {
                            svc: routing.svc,
                            candidates: routing.candidates,
                        };
                        return Poll::Ready(Ok(Recover::wrap(response, rest)));
                    }
                    Some(out) => return Poll::Ready(out),
                    None => {}
                }
                continue;
            }
            if st.pending.is_none() {
                match st.pick() {
                    Ok(request) => st.pending = Some(request),
                    Err(e) => return Poll::Ready(Err(e)),
                }
            }
            if !st.svc_ready {
                match st.svc.poll_ready(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok(())) => st.svc_ready = true,
                    Poll::Ready(Err(e)) => {
                        st.pending = None;
                        if let Some(out) = st.settle(Err(e)) {
                            return Poll::Ready(out);
                        }
                        continue;
                    }
                }
            }
            let request = st.pending.take().expect("a request is pending");
            st.svc_ready = false;
            let now = Instant::now();
            st.started.get_or_insert(now);
            st.attempt_started = Some(now);
            call.set(Some(st.svc.call(request)));
        }
    }
}

impl<S, C> Routing<S, C>
where
    C: CandidateSource,
{
    /// The request for the next candidate to call, or the final error.
    fn pick(&mut self) -> Result<ChatRequest, ChatError> {
        match self.candidates.next() {
            Some((model, force)) => {
                let request = self.candidates.request_for(&model, force);
                self.current = Some((model, self.candidates.log().len()));
                self.attempt_started = None;
                Ok(request)
            }
            None => Err(self.give_up()),
        }
    }

    /// Handles one candidate's outcome: `Some` ends the call.
    fn settle(
        &mut self,
        result: Result<ChatResponse, ChatError>,
    ) -> Option<Result<ChatResponse, ChatError>> {
        let (model, before) = self.current.take().expect("a candidate was called");
        let latency = self
            .attempt_started
            .map_or(Duration::ZERO, |started| started.elapsed());
        let log = self.candidates.log();
        log.record_if_missing(before, &model, &result, latency);
        let attempts = log.len();
        let e = match result {
            Ok(response) => {
                self.finish(Some(response.model()), attempts);
                let mut result = Ok(response);
                self.candidates.log().attach(&mut result);
                return Some(result);
            }
            Err(e) => e,
        };
        let kind = e.kind();
        tracing::debug!(
            model = &*model,
            attempt = attempts,
            outcome = %kind,
            latency_ms = latency.as_secs_f64() * 1e3,
            "candidate failed"
        );
        self.candidates.note_failure(&model, &e);
        if self.candidates.forced() {
            self.last_error = Some(e);
            return Some(Err(self.give_up()));
        }
        if self.candidates.moves_on(&model, &e) {
            self.last_error = Some(e);
            return None;
        }
        // The kind does not fall back: the caller sees the reason as it is.
        let mut e = e;
        self.finish(None, self.candidates.log().len());
        self.candidates.log().attach_error(&mut e);
        Some(Err(e))
    }

    /// The error when no candidate is left (see [`Candidates::final_error`]).
    fn give_up(&mut self) -> ChatError {
        let attempts = self.candidates.log().snapshot();
        self.finish(None, attempts.len());
        let last = self.last_error.take();
        self.candidates.final_error(last, attempts)
    }

    fn finish(&mut self, served: Option<&str>, attempts: usize) {
        self.done = true;
        // Reading the clock costs more than the rest of this: only when traced.
        if self.span.is_disabled() {
            return;
        }
        if let Some(served) = served {
            self.span.record("served", served);
        }
        self.span.record("attempts", attempts);
        if let Some(started) = self.started {
            self.span
                .record("latency_ms", started.elapsed().as_secs_f64() * 1e3);
        }
    }
}

impl<S, C> fmt::Debug for RouteFuture<S, C>
where
    S: Service<ChatRequest>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteFuture::Passthrough { .. } => f.write_str("RouteFuture::Passthrough"),
            RouteFuture::Routing { state: None, .. } => f.write_str("RouteFuture::Done"),
            RouteFuture::Routing {
                state: Some(state), ..
            } => f
                .debug_struct("RouteFuture::Routing")
                .field("requested", &state.candidates.template().model())
                .field("calling", &state.current.as_ref().map(|c| &c.0))
                .field("failed_upstream", &state.candidates.failed_upstream())
                .finish(),
        }
    }
}
