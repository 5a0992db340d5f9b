//! [`ResponseFuture`] of [`ProviderFallback`](super::ProviderFallback).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project::pin_project;
use tower_service::Service;

use super::candidates::GroupCandidates;
use crate::layers::route::future::RouteFuture;
use crate::{ChatError, ChatRequest, ChatResponse};

/// Response future of [`ProviderFallback`](super::ProviderFallback).
#[pin_project]
pub struct ResponseFuture<S>
where
    S: Service<ChatRequest>,
{
    #[pin]
    inner: RouteFuture<S, GroupCandidates>,
}

impl<S> ResponseFuture<S>
where
    S: Service<ChatRequest>,
{
    pub(super) fn new(inner: RouteFuture<S, GroupCandidates>) -> Self {
        ResponseFuture { inner }
    }
}

impl<S> Future for ResponseFuture<S>
where
    S: Service<ChatRequest, Response = ChatResponse, Error = ChatError> + Send + 'static,
    S::Future: Send + 'static,
{
    type Output = Result<ChatResponse, ChatError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project().inner.poll(cx)
    }
}

impl<S> fmt::Debug for ResponseFuture<S>
where
    S: Service<ChatRequest>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}
