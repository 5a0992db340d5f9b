//! [`ResponseFuture`] of [`Limit`](super::Limit).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use pin_project::pin_project;
use tower_service::Service;

use super::guard::{over_limit, Guard};
use super::store::Reservation;
use super::view::Shared;
use crate::chat::ChatError;
use crate::store::StoreFuture;
use crate::{ChatRequest, ChatResponse};

/// Response future of [`Limit`](super::Limit): reserves (when the store
/// answers later), calls, then settles the call's usage.
#[pin_project]
pub struct ResponseFuture<S>
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

/// A call waiting for the store's answer, with the service polled ready for it.
pub(super) struct Reserving<S> {
    pub(super) reservation: StoreFuture<Reservation>,
    pub(super) service: S,
    pub(super) request: Option<ChatRequest>,
    pub(super) shared: Arc<Shared>,
    pub(super) model: Arc<str>,
    pub(super) prompt: u64,
}

impl<S> ResponseFuture<S>
where
    S: Service<ChatRequest>,
{
    /// A call of a model without limits.
    pub(super) fn plain(future: S::Future) -> Self {
        Self::with(State::Plain { future })
    }

    /// A call counted with `guard`.
    pub(super) fn calling(future: S::Future, guard: Guard) -> Self {
        Self::with(State::Calling {
            future,
            guard: Some(guard),
        })
    }

    /// A call refused at its limit.
    pub(super) fn denied(error: ChatError) -> Self {
        Self::with(State::Denied { error: Some(error) })
    }

    /// A call that waits for the store.
    pub(super) fn reserving(reserving: Reserving<S>) -> Self {
        Self::with(State::Reserving(Box::new(reserving)))
    }

    fn with(state: State<S, S::Future>) -> Self {
        ResponseFuture { state }
    }
}

impl<S> Future for ResponseFuture<S>
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
                            let limits = r.shared.get(&r.model).map(|(_, l)| *l);
                            let limits = limits.unwrap_or_default();
                            State::Denied {
                                error: Some(over_limit(&r.model, &limits, until)),
                            }
                        }
                        Reservation::Granted(grant) => {
                            let request = r.request.take().expect("polled after completion");
                            let future = r.service.call(request);
                            let (shared, model) = (r.shared.clone(), r.model.clone());
                            State::Calling {
                                future,
                                guard: Some(Guard::new(shared, model, grant, r.prompt)),
                            }
                        }
                    };
                    state.set(next);
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
        f.write_str(match self.state {
            State::Plain { .. } => "ResponseFuture::Plain",
            State::Reserving(_) => "ResponseFuture::Reserving",
            State::Calling { .. } => "ResponseFuture::Calling",
            State::Denied { .. } => "ResponseFuture::Denied",
        })
    }
}
