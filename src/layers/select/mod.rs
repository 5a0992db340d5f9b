//! Model selection: a user routing function picks the model of each request, with a default when it cannot.
//!
//! This is Not Diamond's "router with a default" pattern: a function (an
//! `async` closure, or a `Service<ChatRequest, Response = String>` such as a
//! client of a routing API) looks at the request and answers the model to
//! call. The chosen id replaces the request's model before the inner
//! service is called, so the layers below (fallback, balance, providers) see
//! the choice.
//!
//! The function has its own budget (default 5 s, and never past the
//! request's deadline). If it fails, times out, or picks a model that is not
//! among the configured candidates, the *default model* is used instead
//! (by default the first candidate) and a warning is logged with the reason:
//! a broken router costs a less-than-ideal model, never a failed call.
//!
//! Every request goes through the function; to keep a caller's explicit
//! choice, return `request.model()` from it. Put this layer outermost.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use llm_fallback::mock::MockProvider;
//! use llm_fallback::{ChatRequest, Message, SelectModelLayer};
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let upstream = MockProvider::new();
//! let select = SelectModelLayer::from_fn(|request: &ChatRequest| {
//!     let hard = request.messages().iter().any(|m| m.text().contains("prove"));
//!     async move {
//!         if hard {
//!             Ok("anthropic/claude-3-5-sonnet-20240620".to_owned())
//!         } else {
//!             Err("no opinion") // falls back to the default: the first candidate
//!         }
//!     }
//! })
//! .candidates(["openai/gpt-4o-mini", "anthropic/claude-3-5-sonnet-20240620"])
//! .timeout(Duration::from_secs(2))
//! .build()
//! .unwrap();
//! let service = ServiceBuilder::new().layer(select).service(upstream.clone());
//!
//! let request = ChatRequest::new("auto", [Message::user("prove it")]);
//! let response = service.clone().oneshot(request).await.unwrap();
//! assert_eq!(response.model(), "anthropic/claude-3-5-sonnet-20240620");
//!
//! let request = ChatRequest::new("auto", [Message::user("hello")]);
//! let response = service.oneshot(request).await.unwrap();
//! assert_eq!(response.model(), "openai/gpt-4o-mini");
//! # }
//! ```

pub mod future;
mod layer;
mod policy;

use std::mem;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::time::Instant;
use tower_service::Service;
use tracing::field::Empty;

pub use self::future::ResponseFuture;
pub use self::layer::{SelectModelBuilder, SelectModelLayer};

use self::layer::Shared;
use crate::chat::{ChatError, ChatRequest, ChatResponse};
use crate::clamp::after;

/// Sets each request's model to the routing function's choice, or to the
/// default. See the [module docs](self).
#[derive(Clone)]
pub struct SelectModel<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> SelectModel<S> {
    /// Wraps `inner` with the routing function of `layer` (built by
    /// [`SelectModelLayer::from_fn`] or [`SelectModelLayer::from_service`]).
    pub fn new(inner: S, layer: SelectModelLayer) -> Self {
        SelectModel {
            inner,
            shared: layer.shared,
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
}

impl<S: std::fmt::Debug> std::fmt::Debug for SelectModel<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SelectModel")
            .field("inner", &self.inner)
            .field("select", &self.shared)
            .finish()
    }
}

impl<S> Service<ChatRequest> for SelectModel<S>
where
    S: Service<ChatRequest, Response = ChatResponse, Error = ChatError> + Clone,
{
    type Response = ChatResponse;
    type Error = ChatError;
    type Future = ResponseFuture<S>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ChatError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: ChatRequest) -> ResponseFuture<S> {
        let span = tracing::info_span!("select_model", chosen = Empty, by_default = Empty);
        let choice = self.shared.selector.select(&request);
        let mut deadline = after(Instant::now(), self.shared.timeout);
        if let Some(outer) = request.deadline() {
            deadline = deadline.min(outer);
        }
        let choice = tokio::time::timeout_at(deadline, choice);
        // The ready service waits in the future for the choice.
        let clone = self.inner.clone();
        let ready = mem::replace(&mut self.inner, clone);
        ResponseFuture::new(choice, request, ready, self.shared.clone(), span)
    }
}
