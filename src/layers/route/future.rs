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

use super::recover::Recover;
use super::{cooling_until, CandidateSource, RoutePolicy};
use crate::chat::{Attempt, AttemptLog, ChatError, ErrorKind, LogScope, MaxUpstreamCalls};
use crate::layers::health::{AllCooling, ForceAttempt, Routed};
use crate::{ChatRequest, ChatResponse};

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
    pub(super) svc: S,
    svc_ready: bool,
    pub(super) template: ChatRequest,
    pub(super) source: C,
    pub(super) policy: Arc<RoutePolicy>,
    pub(super) log: LogScope,
    span: Span,
    /// When the first call started (cooling skips before it take no time).
    started: Option<Instant>,
    /// The candidate being called: its id and the log length before the call.
    current: Option<(Arc<str>, usize)>,
    /// When the call to it was made.
    attempt_started: Option<Instant>,
    /// The request waiting for the service to be ready.
    pending: Option<ChatRequest>,
    /// Failed upstream calls (cooling skips and refusals are not counted).
    upstream: usize,
    /// The cooling candidate that recovers first, for the last resort.
    earliest_cooling: Option<(Arc<str>, Instant)>,
    /// The earliest known recovery of any candidate (cooling, limited, or
    /// rate limited with a `Retry-After`): the final error's `retry_after`.
    earliest_recovery: Option<Instant>,
    /// Whether the last resort (one call to a cooling candidate) was used.
    pub(super) forced: bool,
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
                template: request,
                source,
                policy,
                log,
                span,
                started: None,
                current: None,
                attempt_started: None,
                pending: None,
                upstream: 0,
                earliest_cooling: None,
                earliest_recovery: None,
                forced: false,
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
                    Some(Ok(response)) if response.is_stream() && st.recovers() => {
                        let routing = state.take().expect("the routing state");
                        return Poll::Ready(Ok(Recover::wrap(response, routing)));
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
    /// Whether a stream that served may be finished on another candidate.
    fn recovers(&self) -> bool {
        self.policy.recovery.enabled_for(self.template.model())
    }

    /// The request for the next candidate to call, or the final error.
    fn pick(&mut self) -> Result<ChatRequest, ChatError> {
        match self.next_candidate() {
            Some((model, force)) => Ok(self.request_for(model, force)),
            None => Err(self.give_up()),
        }
    }

    /// The next model to call and whether it is the forced last resort, or
    /// `None` when the call must end. The same rules for the first attempt
    /// and for mid-stream recovery: cooling candidates are skipped (and
    /// logged as skips); once no other candidate is left, the
    /// [`AllCooling`] policy decides whether the one that recovers first
    /// gets a single forced call; the fallback bound and the call's
    /// upstream-call cap end the call early.
    pub(super) fn next_candidate(&mut self) -> Option<(Arc<str>, bool)> {
        let within_budget = self
            .policy
            .max_fallbacks
            .is_none_or(|max| self.upstream <= max);
        if self.forced || !within_budget || MaxUpstreamCalls::reached(&self.template, &self.log) {
            return None;
        }
        while let Some(model) = self.source.next(&self.policy.health) {
            if let Some(until) = cooling_until(&self.policy.health, &model) {
                let refusal = ChatError::cooling_down(&*model, until);
                self.log
                    .push(Attempt::failure(&*model, &refusal, Duration::ZERO));
                tracing::debug!(model = &*model, "skipped: cooling down");
                self.note_cooling(model, until);
                continue;
            }
            return Some((model, false));
        }
        if self.policy.health.all_cooling() != AllCooling::TryEarliest {
            return None;
        }
        let (model, _) = self.earliest_cooling.clone()?;
        self.forced = true;
        tracing::debug!(
            model = &*model,
            "no candidate left but cooling ones: one call to the earliest"
        );
        Some((model, true))
    }

    fn request_for(&mut self, model: Arc<str>, force: bool) -> ChatRequest {
        let mut request = self.template.clone();
        if request.model() != &*model {
            request.set_model(&*model);
        }
        if force {
            request.extensions_mut().insert(ForceAttempt);
        }
        self.current = Some((model, self.log.len()));
        self.attempt_started = None;
        request
    }

    pub(super) fn note_cooling(&mut self, model: Arc<str>, until: Instant) {
        self.note_recovery(until);
        match &self.earliest_cooling {
            Some((_, earliest)) if *earliest <= until => {}
            _ => self.earliest_cooling = Some((model, until)),
        }
    }

    /// Notes when some candidate may serve again.
    pub(super) fn note_recovery(&mut self, at: Instant) {
        if self.earliest_recovery.is_none_or(|earliest| at < earliest) {
            self.earliest_recovery = Some(at);
        }
    }

    /// Notes what a failure says about its model's recovery.
    pub(super) fn note_error(&mut self, model: &Arc<str>, e: &ChatError) {
        match (e.kind(), e.cooling_until(), e.retry_after()) {
            (ErrorKind::CoolingDown, Some(until), _) => self.note_cooling(model.clone(), until),
            (_, _, Some(wait)) => {
                if let Some(at) = Instant::now().checked_add(wait) {
                    self.note_recovery(at);
                }
            }
            _ => {}
        }
    }

    /// Stamps the earliest known recovery on the error that ends the call.
    pub(super) fn stamp_recovery(&self, e: &mut ChatError) {
        if let Some(at) = self.earliest_recovery {
            e.set_retry_after(Some(at.saturating_duration_since(Instant::now())));
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
        self.log.record_if_missing(before, &model, &result, latency);
        let e = match result {
            Ok(response) => {
                self.finish(Some(response.model()), self.log.len());
                let mut result = Ok(response);
                self.log.attach(&mut result);
                return Some(result);
            }
            Err(e) => e,
        };
        let kind = e.kind();
        tracing::debug!(
            model = &*model,
            attempt = self.log.len(),
            outcome = %kind,
            latency_ms = latency.as_secs_f64() * 1e3,
            "candidate failed"
        );
        self.note_error(&model, &e);
        if kind != ErrorKind::CoolingDown {
            self.upstream += 1;
        }
        if self.forced {
            self.last_error = Some(e);
            return Some(Err(self.give_up()));
        }
        if self.source.reroute(&model, &e) || self.policy.falls_back_on(kind) {
            self.last_error = Some(e);
            return None;
        }
        // The kind does not fall back: the caller sees the reason as it is.
        let mut e = e;
        self.finish(None, self.log.len());
        self.log.attach_error(&mut e);
        Some(Err(e))
    }

    /// The error when no candidate is left: `all_failed` once more than one
    /// model was involved, else the single model's own error.
    pub(super) fn give_up(&mut self) -> ChatError {
        let attempts = self.log.snapshot();
        self.finish(None, attempts.len());
        // Candidates whose failure tripped their breaker recover then.
        for a in attempts.iter().filter(|a| a.upstream) {
            if let Some(until) = cooling_until(&self.policy.health, &a.model) {
                self.note_recovery(until);
            }
        }
        let last = self.last_error.take().or_else(|| {
            // Every candidate cooled and none was called (`FailFast`).
            let (model, until) = self.earliest_cooling.as_ref()?;
            Some(ChatError::cooling_down(&**model, *until))
        });
        let Some(mut last) = last else {
            let mut e = ChatError::new(
                ErrorKind::NotFound,
                format!("no candidate is available for {:?}", self.template.model()),
            );
            e.set_attempts(attempts);
            return e;
        };
        self.stamp_recovery(&mut last);
        let first = attempts.first().map(|a| a.model.as_str());
        if attempts.iter().any(|a| Some(a.model.as_str()) != first) {
            ChatError::all_failed(last, attempts)
        } else {
            last.set_attempts(attempts);
            last
        }
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
                .field("requested", &state.template.model())
                .field("calling", &state.current.as_ref().map(|c| &c.0))
                .field("failed_upstream", &state.upstream)
                .finish(),
        }
    }
}
