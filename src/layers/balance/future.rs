//! [`ResponseFuture`] of [`WeightedBalance`](super::WeightedBalance).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project::pin_project;
use tower_service::Service;

use super::candidates::WeightedCandidates;
use super::load::Measured;
use crate::layers::route::future::RouteFuture;
use crate::{ChatError, ChatRequest, ChatResponse};

/// Response future of [`WeightedBalance`](super::WeightedBalance).
#[pin_project]
pub struct ResponseFuture<S>
where
    S: Service<ChatRequest, Response = ChatResponse, Error = ChatError> + Clone,
{
    #[pin]
    inner: RouteFuture<Measured<S>, WeightedCandidates>,
}

impl<S> ResponseFuture<S>
where
    S: Service<ChatRequest, Response = ChatResponse, Error = ChatError> + Clone,
{
    pub(super) fn new(inner: RouteFuture<Measured<S>, WeightedCandidates>) -> Self {
        ResponseFuture { inner }
    }
}

impl<S> Future for ResponseFuture<S>
where
    S: Service<ChatRequest, Response = ChatResponse, Error = ChatError> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Output = Result<ChatResponse, ChatError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project().inner.poll(cx)
    }
}

impl<S> fmt::Debug for ResponseFuture<S>
where
    S: Service<ChatRequest, Response = ChatResponse, Error = ChatError> + Clone,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}
