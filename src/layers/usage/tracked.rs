//! The inner service as a balance layer calls it: each call to a tracked
//! deployment is counted against its limits, in flight, and timed.

use std::fmt;
use std::future::Future;
use std::mem;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use pin_project::pin_project;
use tower_service::Service;

use super::guard::{over_limit, Guard};
use super::store::Reservation;
use super::tracker::{estimate_tokens, prompt_tokens, Tracker};
use crate::chat::ChatError;
use crate::layers::cooldown::StoreFuture;
use crate::{ChatRequest, ChatResponse};

/// Wraps the service a balance layer calls; without a tracker it only passes through.
#[derive(Clone, Debug)]
pub(crate) struct Tracked<S> {
    inner: S,
    tracker: Option<Arc<Tracker>>,
}

impl<S> Tracked<S> {
    pub(crate) fn new(inner: S, tracker: Option<Arc<Tracker>>) -> Self {
        Tracked { inner, tracker }
    }
}

impl<S> Service<ChatRequest> for Tracked<S>
where
    S: Service<ChatRequest, Response = ChatResponse, Error = ChatError> + Clone,
{
    type Response = ChatResponse;
    type Error = ChatError;
    type Future = TrackedFuture<S>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ChatError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: ChatRequest) -> TrackedFuture<S> {
        track(&mut self.inner, self.tracker.as_ref(), request)
    }
}

/// Calls `inner` (polled ready) with `request`, counted against the
/// limits of the model it names when `tracker` tracks it.
pub(crate) fn track<S>(
    inner: &mut S,
    tracker: Option<&Arc<Tracker>>,
    request: ChatRequest,
) -> TrackedFuture<S>
where
    S: Service<ChatRequest, Response = ChatResponse, Error = ChatError> + Clone,
{
    let Some((tracker, (model, stats))) = tracker.and_then(|t| Some((t, t.get(request.model())?)))
    else {
        return TrackedFuture::plain(inner.call(request));
    };
    let model = model.clone();
    if !stats.counted {
        let guard = Guard::start(tracker.clone(), model, None, 0);
        return TrackedFuture::calling(inner.call(request), guard);
    }
    let prompt = prompt_tokens(&request);
    let mut reservation = tracker
        .store
        .reserve(&model, &stats.limits, estimate_tokens(&request));
    let state = match reservation.now() {
        Some(Reservation::Granted(grant)) => {
            let guard = Guard::start(tracker.clone(), model, Some(grant), prompt);
            return TrackedFuture::calling(inner.call(request), guard);
        }
        Some(Reservation::Denied { until }) => State::Denied {
            error: Some(over_limit(&model, &stats.limits, until)),
        },
        None => {
            // The store answers later: take the service that was polled ready.
            let clone = inner.clone();
            State::Reserving(Box::new(Reserving {
                reservation,
                service: mem::replace(inner, clone),
                request: Some(request),
                tracker: tracker.clone(),
                model,
                prompt,
            }))
        }
    };
    TrackedFuture { state }
}

/// The future of [`Tracked`].
#[pin_project]
pub(crate) struct TrackedFuture<S>
where
    S: Service<ChatRequest>,
{
    #[pin]
    state: State<S, S::Future>,
}

#[pin_project(project = StateProj)]
enum State<S, F> {
    Plain {
        #[pin]
        future: F,
    },
    Reserving(Box<Reserving<S>>),
    Calling {
        #[pin]
        future: F,
        guard: Option<Guard>,
    },
    Denied {
        error: Option<ChatError>,
    },
}

struct Reserving<S> {
    reservation: StoreFuture<Reservation>,
    service: S,
    request: Option<ChatRequest>,
    tracker: Arc<Tracker>,
    model: Arc<str>,
    prompt: u64,
}

impl<S> TrackedFuture<S>
where
    S: Service<ChatRequest>,
{
    fn plain(future: S::Future) -> Self {
        TrackedFuture {
            state: State::Plain { future },
        }
    }

    fn calling(future: S::Future, guard: Guard) -> Self {
        TrackedFuture {
            state: State::Calling {
                future,
                guard: Some(guard),
            },
        }
    }
}

impl<S> Future for TrackedFuture<S>
where
    S: Service<ChatRequest, Response = ChatResponse, Error = ChatError>,
{
    type Output = Result<ChatResponse, ChatError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            match state.as_mut().project() {
                StateProj::Plain { future } => return future.poll(cx),
                StateProj::Denied { error } => {
                    return Poll::Ready(Err(error.take().expect("polled after completion")))
                }
                StateProj::Calling { future, guard } => {
                    let result = ready!(future.poll(cx));
                    let guard = guard.take().expect("polled after completion");
                    return Poll::Ready(guard.finish(result));
                }
                StateProj::Reserving(r) => {
                    let reservation = ready!(Pin::new(&mut r.reservation).poll(cx));
                    let next = match reservation {
                        Reservation::Denied { until } => {
                            let limits = r.tracker.get(&r.model).map(|(_, s)| s.limits);
                            State::Denied {
                                error: Some(over_limit(
                                    &r.model,
                                    &limits.unwrap_or_default(),
                                    until,
                                )),
                            }
                        }
                        Reservation::Granted(grant) => {
                            let request = r.request.take().expect("polled after completion");
                            let future = r.service.call(request);
                            let (tracker, model) = (r.tracker.clone(), r.model.clone());
                            let guard = Guard::start(tracker, model, Some(grant), r.prompt);
                            State::Calling {
                                future,
                                guard: Some(guard),
                            }
                        }
                    };
                    state.set(next);
                }
            }
        }
    }
}

impl<S> fmt::Debug for TrackedFuture<S>
where
    S: Service<ChatRequest>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.state {
            State::Plain { .. } => "TrackedFuture::Plain",
            State::Reserving(_) => "TrackedFuture::Reserving",
            State::Calling { .. } => "TrackedFuture::Calling",
            State::Denied { .. } => "TrackedFuture::Denied",
        })
    }
}
