//! The response future of [`Retry`](super::Retry): call, wait, call again.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use pin_project::{pin_project, pinned_drop};
use tokio::time::{sleep, Instant, Sleep};
use tower_service::Service;
use tracing::{debug, field, Span};

use super::policy::{Decision, RetryContext};
use super::Shared;
use crate::chat::{AttemptLog, LogScope, MaxUpstreamCalls};
use crate::layers::health::{ForceAttempt, SingleAttempt};
use crate::{ChatError, ChatRequest, ChatResponse};

/// Response future of [`Retry`](super::Retry).
#[pin_project(PinnedDrop)]
pub struct ResponseFuture<S>
where
    S: Service<ChatRequest, Response = ChatResponse, Error = ChatError>,
{
    #[pin]
    state: State<S::Future>,
    /// Owned by this call, so later attempts can drive its readiness.
    service: S,
    /// The untouched request, cloned (O(1)) for each attempt.
    request: ChatRequest,
    log: LogScope,
    shared: Arc<Shared>,
    /// The number of the current attempt, from 1.
    attempt: u32,
    /// The log's length when the current attempt started.
    before: usize,
    started: Instant,
    first_started: Instant,
    previous_delay: Option<Duration>,
    /// The current attempt's span (see [`attempt_span`]).
    span: Span,
    /// Whether the current attempt's outcome is in its span: one dropped
    /// before (a hedge that lost its race, a caller gone) says so on drop.
    recorded: bool,
}

#[pin_project(project = StateProj)]
enum State<F> {
    Calling {
        #[pin]
        future: F,
    },
    // Boxed: only retries pay for the timer's size.
    Sleeping {
        sleep: Pin<Box<Sleep>>,
    },
    Ready,
}

impl<S> ResponseFuture<S>
where
    S: Service<ChatRequest, Response = ChatResponse, Error = ChatError>,
{
    /// Starts the first attempt on `service`, which must have been polled ready.
    pub(super) fn new(
        mut service: S,
        request: ChatRequest,
        log: LogScope,
        shared: Arc<Shared>,
    ) -> Self {
        let span = attempt_span(request.model(), 1, &log);
        let before = log.len();
        let started = Instant::now();
        let future = {
            let _entered = span.enter();
            service.call(request.clone())
        };
        ResponseFuture {
            state: State::Calling { future },
            service,
            request,
            log,
            shared,
            attempt: 1,
            before,
            started,
            first_started: started,
            previous_delay: None,
            span,
            recorded: false,
        }
    }
}

impl<S> Future for ResponseFuture<S>
where
    S: Service<ChatRequest, Response = ChatResponse, Error = ChatError>,
{
    type Output = Result<ChatResponse, ChatError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Calling { future } => {
                    let result = {
                        let _entered = this.span.enter();
                        ready!(future.poll(cx))
                    };
                    let latency = this.started.elapsed();
                    let model = this.request.model();
                    this.log
                        .record_if_missing(*this.before, model, &result, latency);
                    record_outcome(this.span, &result, latency);
                    *this.recorded = true;
                    let mut error = match result {
                        Ok(response) => {
                            let mut result = Ok(response);
                            this.log.attach(&mut result);
                            return Poll::Ready(result);
                        }
                        Err(error) => error,
                    };
                    let delay = decide(
                        this.shared,
                        this.request,
                        this.log,
                        &error,
                        *this.attempt,
                        *this.previous_delay,
                        this.first_started.elapsed(),
                    );
                    let Some(delay) = delay else {
                        this.log.attach_error(&mut error);
                        return Poll::Ready(Err(error));
                    };
                    *this.previous_delay = Some(delay);
                    if delay.is_zero() {
                        this.state.set(State::Ready);
                    } else {
                        this.state.set(State::Sleeping {
                            sleep: Box::pin(sleep(delay)),
                        });
                    }
                }
                StateProj::Sleeping { sleep } => {
                    ready!(sleep.as_mut().poll(cx));
                    this.state.set(State::Ready);
                }
                StateProj::Ready => {
                    if let Err(mut error) = ready!(this.service.poll_ready(cx)) {
                        this.log.attach_error(&mut error);
                        return Poll::Ready(Err(error));
                    }
                    *this.attempt += 1;
                    *this.span = attempt_span(this.request.model(), *this.attempt, this.log);
                    *this.recorded = false;
                    *this.before = this.log.len();
                    *this.started = Instant::now();
                    let future = {
                        let _entered = this.span.enter();
                        this.service.call(this.request.clone())
                    };
                    this.state.set(State::Calling { future });
                }
            }
        }
    }
}

/// The span of one upstream attempt. Debug level: free unless a subscriber
/// wants it (the gateway's trace exporter does). The field values are only
/// computed when it is enabled. Dotted names follow OpenTelemetry's
/// semantic conventions, for exporters that pass them on.
fn attempt_span(model: &str, attempt: u32, log: &AttemptLog) -> Span {
    tracing::debug_span!(
        "retry_attempt",
        otel.name = "attempt",
        otel.kind = "client",
        model,
        // Signed: OpenTelemetry's integers are i64.
        attempt = i64::from(attempt),
        hedge = log.is_racer(),
        gen_ai.operation.name = "chat",
        gen_ai.provider.name = provider_of(model),
        gen_ai.request.model = model,
        outcome = field::Empty,
        latency_ms = field::Empty,
        http.response.status_code = field::Empty,
        error.type = field::Empty,
        otel.status_code = field::Empty,
    )
}

/// The provider part of `provider/model` (empty when there is none).
fn provider_of(model: &str) -> &str {
    model.split_once('/').map_or("", |(p, _)| p)
}

/// Writes an attempt's outcome in its span: `ok` or the error's kind, and
/// for an error the upstream status (when the provider answered).
fn record_outcome(span: &Span, result: &Result<ChatResponse, ChatError>, latency: Duration) {
    if span.is_disabled() {
        return;
    }
    match result {
        Ok(_) => span.record("outcome", "ok"),
        Err(e) => {
            let kind = e.kind().as_str();
            if let Some(status) = e.status() {
                span.record("http.response.status_code", i64::from(status.as_u16()));
            }
            span.record("outcome", kind)
                .record("error.type", kind)
                .record("otel.status_code", "error")
        }
    };
    span.record("latency_ms", latency.as_secs_f64() * 1000.0);
}

#[pinned_drop]
impl<S> PinnedDrop for ResponseFuture<S>
where
    S: Service<ChatRequest, Response = ChatResponse, Error = ChatError>,
{
    fn drop(self: Pin<&mut Self>) {
        let this = self.project();
        if !*this.recorded && matches!(&*this.state, State::Calling { .. }) {
            let latency = this.started.elapsed().as_secs_f64() * 1000.0;
            this.span
                .record("outcome", "cancelled")
                .record("latency_ms", latency);
        }
    }
}

/// The delay before the next attempt, or `None` to return `error`: the
/// policy's wish, then the deadline, then the budget.
fn decide(
    shared: &Shared,
    request: &ChatRequest,
    log: &AttemptLog,
    error: &ChatError,
    attempt: u32,
    previous_delay: Option<Duration>,
    elapsed: Duration,
) -> Option<Duration> {
    let model = request.model();
    let kind = error.kind().as_str();
    let deadline = request.deadline();
    // Before the policy: a probe or forced call is one look at a model that
    // was failing, and the cap bounds the whole call's load.
    let extensions = request.extensions();
    if extensions.get::<SingleAttempt>().is_some() || extensions.get::<ForceAttempt>().is_some() {
        debug!(model, attempt, kind, "not retrying: a single-attempt call");
        return None;
    }
    if MaxUpstreamCalls::reached(request, log) {
        debug!(
            model,
            attempt, kind, "not retrying: the call's upstream-call cap is reached"
        );
        return None;
    }
    let ctx = RetryContext::new(model, error, attempt, &shared.rng)
        .with_previous_delay(previous_delay)
        .with_elapsed(elapsed)
        .with_deadline(deadline);
    let delay = match shared.policy.decide(&ctx) {
        Decision::Retry(delay) => delay,
        Decision::Stop(reason) => {
            debug!(model, attempt, kind, reason, "not retrying");
            return None;
        }
    };
    let delay_ms = delay.as_secs_f64() * 1000.0;
    if let Some(deadline) = deadline {
        // Sleeping into the deadline only to be cut off wastes the time a
        // fallback could use: give the error back now.
        let fits = Instant::now()
            .checked_add(delay)
            .is_some_and(|wake| wake < deadline);
        if !fits {
            debug!(
                model,
                attempt, kind, delay_ms, "not retrying: the delay does not fit before the deadline"
            );
            return None;
        }
    }
    if let Some(budget) = &shared.budget {
        if !budget.withdraw() {
            debug!(
                model,
                attempt, kind, "not retrying: the retry budget is spent"
            );
            return None;
        }
    }
    debug!(model, attempt, kind, delay_ms, "retrying");
    Some(delay)
}

impl<S> fmt::Debug for ResponseFuture<S>
where
    S: Service<ChatRequest, Response = ChatResponse, Error = ChatError>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("model", &self.request.model())
            .field("attempt", &self.attempt)
            .finish_non_exhaustive()
    }
}
