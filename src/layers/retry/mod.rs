//! Calls the same model again when it fails in a way worth retrying, with
//! exponential backoff and jitter, `Retry-After`, a retry budget and the
//! call's deadline.
//!
//! Per the failure-class table, rate limits, server errors and connection
//! errors are retried; timeouts are not (a silent route only multiplies the
//! wait), nor are errors that would fail the same way again. Each retry
//! waits per the model's [`Backoff`], and at least as long as the provider's
//! `Retry-After`; a provider asking for more than
//! [`max_retry_after`](RetryBuilder::max_retry_after) (10 s) is not
//! retried, so a fallback can serve the call at once. A retry never starts
//! if its delay would reach the deadline stamped by an outer `Timeout`: the
//! error goes back immediately instead. A shared [`RetryBudget`] stops retry
//! storms when a provider degrades.
//!
//! Every attempt is recorded in the request's [`AttemptLog`]
//! and runs in a `retry_attempt` `tracing` span (model, attempt, outcome,
//! latency); each decision is a debug event with the chosen delay.
//!
//! From code: [`RetryLayer::builder`]; from a config file's `[retry]`:
//! [`RetryConfig`], checked and built by [`RetryLayer::from_config`].
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use llm_fallback::mock::{MockProvider, MockReply};
//! use llm_fallback::layers::retry::{Backoff, RetryLayer};
//! use llm_fallback::{ChatRequest, ErrorKind, Message, SharedRng};
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
//! let mock = MockProvider::new();
//! mock.script("azure/gpt-4o", [MockReply::error(ErrorKind::Server), MockReply::text("hi")]);
//!
//! let retry = RetryLayer::builder()
//!     .max_retries(2)
//!     .max_retries_for("openai/gpt-4o", 0)
//!     .backoff(Backoff::builder().base(Duration::from_millis(200)).build().unwrap())
//!     .rng(SharedRng::seeded(1))
//!     .build()
//!     .unwrap();
//! let service = ServiceBuilder::new().layer(retry).service(mock.clone());
//!
//! let request = ChatRequest::new("azure/gpt-4o", [Message::user("hello")]);
//! let response = service.oneshot(request).await.unwrap();
//! assert_eq!(response.text().as_deref(), Some("hi"));
//! assert_eq!(response.attempts().len(), 2);
//! assert_eq!(response.attempts()[0].error, Some(ErrorKind::Server));
//! assert_eq!(mock.call_count("azure/gpt-4o"), 2);
//! # }
//! ```
//!
//! # Why not `tower::retry::Retry`
//!
//! Tower's [`Policy`](tower::retry::Policy) hands back an opaque future to
//! wait on, per request, without the attempt's model, number or start time.
//! This layer needs to see the chosen delay before waiting (to compare it
//! with the deadline, to log it, to charge the budget only for retries that
//! happen), per-model settings, and a span and an attempt-log entry per
//! attempt. So [`RetryPolicy`] is our own small trait that returns a
//! [`Decision`] (retry after a delay, or stop), and the layer applies the
//! deadline and budget to it. Tower's budget machinery is reused as is:
//! [`RetryBudget`] wraps `tower::retry::budget::TpsBudget` or any
//! `tower::retry::budget::Budget`.

mod backoff;
mod budget;
mod config;
pub mod future;
mod layer;
mod policy;

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use tower_layer::Layer;
use tower_service::Service;

pub use self::backoff::{Backoff, BackoffBuilder, Jitter};
pub use self::budget::RetryBudget;
pub use self::config::{BackoffConfig, BudgetConfig, JitterSetting, RetryConfig};
pub use self::layer::{RetryBuilder, RetryLayer};
pub use self::policy::{Decision, ExponentialRetry, RetryContext, RetryPolicy};

use self::future::ResponseFuture;
use crate::chat::AttemptLog;
use crate::rng::SharedRng;
use crate::{ChatError, ChatRequest, ChatResponse};

/// Retries failed calls to the same model; see the [module docs](self).
#[derive(Clone)]
pub struct Retry<S> {
    inner: S,
    shared: Arc<Shared>,
}

/// What every service of one layer shares.
struct Shared {
    policy: Box<dyn RetryPolicy>,
    budget: Option<RetryBudget>,
    rng: SharedRng,
}

impl<S> Retry<S> {
    /// Wraps `inner` with the settings of `layer` (built by
    /// [`RetryLayer::new`] or [`RetryLayer::builder`]).
    pub fn new(inner: S, layer: RetryLayer) -> Self {
        layer.layer(inner)
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Takes the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S> Service<ChatRequest> for Retry<S>
where
    S: Service<ChatRequest, Response = ChatResponse, Error = ChatError> + Clone,
{
    type Response = ChatResponse;
    type Error = ChatError;
    type Future = ResponseFuture<S>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ChatError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: ChatRequest) -> ResponseFuture<S> {
        let log = AttemptLog::enter(&mut request);
        if let Some(budget) = &self.shared.budget {
            budget.deposit();
        }
        // The ready service makes the first call; the future keeps it to
        // drive readiness again before each retry.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        ResponseFuture::new(inner, request, log, self.shared.clone())
    }
}

impl<S: fmt::Debug> fmt::Debug for Retry<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retry")
            .field("inner", &self.inner)
            .field("shared", &self.shared)
            .finish()
    }
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}
