//! [`StoreFuture`]: a store's answer, ready at once (in memory) or later (over the network).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A store's answer: ready at once (in memory) or later (a remote store).
pub struct StoreFuture<T>(Answer<T>);

enum Answer<T> {
    Ready(Option<T>),
    Later(Pin<Box<dyn Future<Output = T> + Send>>),
}

impl<T> StoreFuture<T> {
    /// An answer known now; allocates nothing.
    pub fn ready(value: T) -> Self {
        StoreFuture(Answer::Ready(Some(value)))
    }

    /// An answer that needs I/O. The future must resolve within the store's
    /// time budget (a few milliseconds): a store never holds a call up for long.
    pub fn boxed(future: impl Future<Output = T> + Send + 'static) -> Self {
        StoreFuture(Answer::Later(Box::pin(future)))
    }

    /// Takes the answer if it is known now.
    pub fn now(&mut self) -> Option<T> {
        match &mut self.0 {
            Answer::Ready(value) => value.take(),
            Answer::Later(_) => None,
        }
    }
}

// The value is never pinned: only the boxed future is, and it is behind a `Box`.
impl<T> Unpin for StoreFuture<T> {}

impl<T> Future for StoreFuture<T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        match &mut self.0 {
            Answer::Ready(value) => {
                Poll::Ready(value.take().expect("StoreFuture polled after completion"))
            }
            Answer::Later(future) => future.as_mut().poll(cx),
        }
    }
}

impl<T> fmt::Debug for StoreFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.0 {
            Answer::Ready(_) => "StoreFuture::Ready",
            Answer::Later(_) => "StoreFuture::Later",
        })
    }
}
