//! Deadlines: a per-model deadline for each attempt, or the total budget of a whole call.
//!
//! Used outermost, [`TimeoutLayer::total`] is the call's budget: it stamps the
//! request's [`Deadline`](crate::Deadline) so inner layers (retry backoff, the
//! attempt timeout) never wait past it, and fails with
//! [`TimeoutKind::Total`]. Used near the leaf, [`TimeoutLayer::attempt`] /
//! [`TimeoutLayer::per_model`] bound each attempt and fail with
//! [`TimeoutKind::Attempt`]; an attempt deadline also fires at the request's
//! deadline when that comes first, reporting `Total` then. A call whose
//! deadline has already passed fails at once, without an upstream call.
//!
//! Errors carry the model, which deadline fired
//! ([`ChatError::timeout_kind`](crate::ChatError::timeout_kind)) and the
//! attempt log. The happy path allocates nothing beyond a copy of the model id
//! (the error must name it) and the shared attempt log: the future is a
//! `pin-project` state with an inline [`tokio::time::Sleep`], as in tower's
//! timeout.
//!
//! For a stream, the future resolves at the commit point (the first content
//! chunk), so an attempt deadline bounds the time to first token. Separate
//! stream deadlines (headers, first token, idle gap, whole stream) are meant
//! to be added to this layer as further per-model settings, applied where the
//! future hands the stream over.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use llm_fallback::mock::{MockProvider, MockReply};
//! use llm_fallback::{ChatRequest, ErrorKind, Message, PerModel, TimeoutKind, TimeoutLayer};
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
//! let mock = MockProvider::new();
//! mock.always("azure/gpt-4o", MockReply::text("late").after(Duration::from_secs(20)));
//! let stack = ServiceBuilder::new()
//!     .layer(TimeoutLayer::total(Duration::from_secs(30)))
//!     .layer(TimeoutLayer::per_model(
//!         PerModel::new(Some(Duration::from_secs(10)))
//!             .with("openai/o1", Some(Duration::from_secs(60))),
//!     ))
//!     .service(mock);
//!
//! let request = ChatRequest::new("azure/gpt-4o", [Message::user("hi")]);
//! let error = stack.oneshot(request).await.unwrap_err();
//! assert_eq!(error.kind(), ErrorKind::Timeout);
//! assert_eq!(error.timeout_kind(), Some(TimeoutKind::Attempt));
//! assert_eq!(error.model(), Some("azure/gpt-4o"));
//! # }
//! ```

mod layer;

pub mod future;

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;
use tower_service::Service;

use crate::attempt::AttemptLog;
use crate::error::{ChatError, TimeoutKind};
use crate::per_model::PerModel;
use crate::{ChatRequest, ChatResponse};

pub use self::future::ResponseFuture;
pub use self::layer::TimeoutLayer;

/// Fails a call that runs past its deadline. See the [module docs](self).
#[derive(Clone)]
pub struct Timeout<S> {
    inner: S,
    budget: Budget,
}

#[derive(Clone, Debug)]
pub(crate) enum Budget {
    Attempt(Arc<PerModel<Option<Duration>>>),
    Total(Duration),
}

impl<S> Timeout<S> {
    /// A per-attempt deadline for every model.
    pub fn new(inner: S, timeout: Duration) -> Self {
        Timeout {
            inner,
            budget: Budget::Attempt(Arc::new(PerModel::new(Some(timeout)))),
        }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// When the call must end, and which deadline that is.
    fn deadline(&self, request: &mut ChatRequest, now: Instant) -> Option<(Instant, TimeoutKind)> {
        let attempt = match &self.budget {
            Budget::Total(total) => {
                // A budget too large to represent is no budget at all.
                if let Some(deadline) = now.checked_add(*total) {
                    request.set_deadline(deadline);
                }
                None
            }
            Budget::Attempt(timeouts) => {
                (*timeouts.get(request.model())).and_then(|d| now.checked_add(d))
            }
        };
        match (attempt, request.deadline()) {
            (Some(attempt), Some(total)) if total <= attempt => Some((total, TimeoutKind::Total)),
            (Some(attempt), _) => Some((attempt, TimeoutKind::Attempt)),
            (None, Some(total)) => Some((total, TimeoutKind::Total)),
            (None, None) => None,
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for Timeout<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timeout")
            .field("inner", &self.inner)
            .field("budget", &self.budget)
            .finish()
    }
}

impl<S> Service<ChatRequest> for Timeout<S>
where
    S: Service<ChatRequest, Response = ChatResponse, Error = ChatError>,
{
    type Response = ChatResponse;
    type Error = ChatError;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ChatError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: ChatRequest) -> Self::Future {
        let start = Instant::now();
        let deadline = self.deadline(&mut request, start);
        let model = request.model().to_owned();
        let log = AttemptLog::enter(&mut request);
        let before = log.len();
        let call = future::Call {
            model,
            log,
            before,
            start,
        };
        match deadline {
            Some((at, which)) if at <= start => ResponseFuture::expired(call, which),
            Some((at, which)) => {
                ResponseFuture::new(self.inner.call(request), Some((at, which)), call)
            }
            None => ResponseFuture::new(self.inner.call(request), None, call),
        }
    }
}
