//! The engine's future: one inner call per candidate until one serves.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project::{pin_project, pinned_drop};
use tokio::time::Instant;
use tower_service::Service;
use tracing::Span;

use super::candidates::Candidates;
use super::hedge::{Hedging, Racer};
use super::recover::{Continuation, Recover};
use super::routing::{Lane, Routing};
use super::{CandidateSource, RoutePolicy};
use crate::chat::{AttemptLog, ChatError, ChatRequest, ChatResponse, MaxUpstreamCalls};
use crate::layers::health::Routed;

/// Either the inner service's own future (the request was not routed) or the
/// engine trying candidates in turn.
#[pin_project(PinnedDrop, project = RouteProj)]
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
        let hedging = policy.hedge.clone().map(Hedging::new);
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
                stop: None,
                done: false,
                hedging,
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
                if let Poll::Ready(result) = future.poll(cx) {
                    call.set(None);
                    let (model, before) = st.current.take().expect("a candidate was called");
                    let latency = st.attempt_started.map_or(Duration::ZERO, |s| s.elapsed());
                    let settled = st.settle(model, Lane::Main { before }, latency, result);
                    match settled {
                        Some(out) => return Poll::Ready(conclude(state, out)),
                        None => continue,
                    }
                }
            }
            if let Some(hedging) = st.hedging.as_mut() {
                if let Poll::Ready((racer, result)) = hedging.poll_racers(cx) {
                    if result.is_ok() && call.is_some() {
                        call.set(None);
                        st.cancel_main();
                    }
                    let Racer {
                        future,
                        model,
                        log,
                        started,
                    } = racer;
                    drop(future);
                    let latency = started.elapsed();
                    match st.settle(model, Lane::Hedge(log), latency, result) {
                        Some(out) => return Poll::Ready(conclude(state, out)),
                        None => continue,
                    }
                }
                if call.is_some() || hedging.running() > 0 {
                    match st.poll_hedge(cx, call.is_some()) {
                        Poll::Ready(()) => continue,
                        Poll::Pending => return Poll::Pending,
                    }
                }
            } else if call.is_some() {
                return Poll::Pending;
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
                        let (model, before) = st.current.take().expect("a candidate was picked");
                        let settled =
                            st.settle(model, Lane::Main { before }, Duration::ZERO, Err(e));
                        if let Some(out) = settled {
                            return Poll::Ready(conclude(state, out));
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
            st.arm_hedge();
        }
    }
}

/// A call dropped while candidates run (the caller left, or an outer
/// route's racer lost): each is logged as cancelled, after the inner
/// layers had their say, so the attempt log names the models that were
/// really called and not the alias that reached this route.
#[pinned_drop]
impl<S, C> PinnedDrop for RouteFuture<S, C>
where
    S: Service<ChatRequest>,
{
    fn drop(self: Pin<&mut Self>) {
        if let RouteProj::Routing { mut call, state } = self.project() {
            let main_in_flight = call.is_some();
            call.set(None);
            if let Some(st) = state.as_mut() {
                st.abandon(main_in_flight);
            }
        }
    }
}

/// The call's outcome, and the log index of the attempt that served: a
/// stream that may be finished on another candidate is wrapped for it.
fn conclude<S, C>(
    state: &mut Option<Box<Routing<S, C>>>,
    (out, index): (Result<ChatResponse, ChatError>, usize),
) -> Result<ChatResponse, ChatError>
where
    S: Service<ChatRequest, Response = ChatResponse, Error = ChatError> + Send + 'static,
    S::Future: Send + 'static,
    C: CandidateSource,
{
    match out {
        Ok(response)
            if response.is_stream()
                && state.as_ref().is_some_and(|st| st.candidates.recovers()) =>
        {
            let routing = state.take().expect("the routing state");
            let rest = Continuation {
                svc: routing.svc,
                candidates: routing.candidates,
            };
            Ok(Recover::wrap(response, rest, index))
        }
        out => out,
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
