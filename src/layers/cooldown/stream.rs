//! A committed stream, judged when it ends.

use std::pin::Pin;
use std::task::{ready, Context, Poll};

use futures_core::Stream;

use super::outcome::Pending;
use super::policy::Verdict;
use crate::chat::{ChatStream, StreamEvent};
use crate::ChatError;

/// Wraps a stream whose call holds a permit: records `Success` at its normal
/// end, the error's verdict at its first error item; dropped before either,
/// its [`Pending`] frees a held probe slot.
pub(super) struct Judged {
    inner: ChatStream,
    pending: Pending,
}

impl Judged {
    pub(super) fn new(inner: ChatStream, pending: Pending) -> Self {
        Judged { inner, pending }
    }
}

impl Stream for Judged {
    type Item = Result<StreamEvent, ChatError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let item = ready!(this.inner.poll_event(cx));
        match &item {
            Some(Ok(_)) => {}
            Some(Err(error)) => {
                let verdict = this.pending.shared.error_verdict(error);
                this.pending.settle(verdict);
            }
            None => this.pending.settle(Verdict::Success),
        }
        Poll::Ready(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}
