//! The boxed response future of the leaf services.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::chat::error::ChatError;
use crate::chat::response::ChatResponse;

/// A boxed future resolving to a chat response, for services whose future is
/// an `async` block (the provider clients, the mock provider).
pub struct ChatFuture {
    inner: Pin<Box<dyn Future<Output = Result<ChatResponse, ChatError>> + Send>>,
}

impl ChatFuture {
    /// Boxes `future`.
    pub fn new<F>(future: F) -> Self
    where
        F: Future<Output = Result<ChatResponse, ChatError>> + Send + 'static,
    {
        ChatFuture {
            inner: Box::pin(future),
        }
    }
}

impl Future for ChatFuture {
    type Output = Result<ChatResponse, ChatError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

impl fmt::Debug for ChatFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChatFuture").finish_non_exhaustive()
    }
}
