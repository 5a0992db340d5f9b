//! Fallback across providers: when a model fails, the next equivalent one is called.
//!
//! A *fallback group* is a list of equivalent models in priority order, for
//! example the same model at two providers. A request for a model of a group
//! tries that model first, then the rest of the group in order (each model
//! once); a request naming a *named group* (an alias) or a one-way *route*
//! tries its list; a request for a model in no group is called alone (and
//! passes through untouched unless a route dedicated to a kind may apply).
//!
//! What moves a call on to the next candidate is the error's kind
//! ([`ErrorKind::is_fallbackable`](crate::ErrorKind::is_fallbackable) by
//! default, overridable per kind). Some kinds have dedicated routes instead:
//! a `ContextWindowExceeded` goes only to the larger-context list configured
//! for it (per model or for all), a `ContentFilter` goes nowhere unless a list
//! is configured, so the provider's reason reaches the caller.
//!
//! With a [`Health`](crate::layers::health::Health) view (`with_health`), candidates that are
//! cooling down are skipped without a call (logged as a `CoolingDown` attempt
//! with `upstream: false`, not counted by `max_fallbacks`). When no other
//! candidate is left, the view's [`AllCooling`](crate::layers::health::AllCooling) policy
//! decides: by default the cooling one that recovers first gets a single
//! call (with [`ForceAttempt`](crate::layers::health::ForceAttempt), never retried); with
//! `FailFast` the call fails without one. Either way the final error's
//! `retry_after` is the earliest known recovery. A call makes at most
//! [`max_upstream_calls`](crate::RouteOptions::max_upstream_calls) upstream
//! calls, retries included (4 by default). The next candidate is called at
//! once: there is no backoff between candidates (that is `Retry`'s
//! business, per model).
//!
//! When every candidate fails, the error is
//! [`ChatError::all_failed`](crate::ChatError::all_failed): its `Display`
//! lists each model's outcome in order and
//! [`attempts()`](crate::ChatError::attempts) every attempt. A failure that
//! does not fall back is returned as it is, with the attempts attached. The
//! response's [`model()`](crate::ChatResponse::model) names the model that
//! served, and its [`attempts()`](crate::ChatResponse::attempts) how.
//!
//! A stream that fails before its first token falls back like any call. A
//! stream that is cut or stalls after it can be finished on the next
//! candidate when mid-stream recovery is on
//! ([`RouteOptions::recover_streams`](crate::RouteOptions::recover_streams), off by default); otherwise it ends
//! with a `StreamInterrupted` item, never silently.
//!
//! Groups come from code ([`FallbackGroups`], [`FallbackBuilder`]), from a
//! config value ([`FallbackConfig`]), or from the `MODEL_FALLBACK_GROUPS`
//! environment variable (format in [`FallbackGroups`]).
//!
//! # Example
//!
//! ```
//! use llm_fallback::mock::{MockProvider, MockReply};
//! use llm_fallback::{ChatRequest, ErrorKind, Message, ProviderFallbackLayer};
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let upstream = MockProvider::new();
//! upstream.always("azure/gpt-4o-mini", MockReply::error(ErrorKind::Auth));
//!
//! let fallback = ProviderFallbackLayer::builder()
//!     .group(["azure/gpt-4o-mini", "openai/gpt-4o-mini"])
//!     .build()
//!     .unwrap();
//! let service = ServiceBuilder::new().layer(fallback).service(upstream.clone());
//!
//! let request = ChatRequest::new("azure/gpt-4o-mini", [Message::user("hi")]);
//! let response = service.oneshot(request).await.unwrap();
//! assert_eq!(response.model(), "openai/gpt-4o-mini");
//! assert_eq!(response.attempts().len(), 2);
//! assert_eq!(upstream.called_models(), ["azure/gpt-4o-mini", "openai/gpt-4o-mini"]);
//! # }
//! ```

mod builder;
mod candidates;
mod config;
pub mod future;
mod groups;
mod layer;

use std::mem;
use std::sync::Arc;
use std::task::{Context, Poll};

use tower_service::Service;
use tracing::field::Empty;

pub use self::builder::FallbackBuilder;
pub use self::config::{FallbackConfig, GroupsSetting};
pub use self::future::ResponseFuture;
pub use self::groups::FallbackGroups;
pub use self::layer::ProviderFallbackLayer;

use self::candidates::Table;
use crate::layers::route::future::RouteFuture;
use crate::layers::route::RoutePolicy;
use crate::{ChatError, ChatRequest, ChatResponse};

/// Calls the next model of the request's fallback group when one fails. See
/// the [module docs](self).
#[derive(Clone, Debug)]
pub struct ProviderFallback<S> {
    inner: S,
    table: Arc<Table>,
    policy: Arc<RoutePolicy>,
}

impl<S> ProviderFallback<S> {
    /// Wraps `inner` with the groups and settings of `layer` (built by
    /// [`ProviderFallbackLayer::builder`]).
    pub fn new(inner: S, layer: ProviderFallbackLayer) -> Self {
        ProviderFallback {
            inner,
            table: layer.table,
            policy: layer.policy,
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

impl<S> Service<ChatRequest> for ProviderFallback<S>
where
    S: Service<ChatRequest, Response = ChatResponse, Error = ChatError> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = ChatResponse;
    type Error = ChatError;
    type Future = ResponseFuture<S>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ChatError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: ChatRequest) -> ResponseFuture<S> {
        let Some(source) = self.table.candidates(request.model()) else {
            return ResponseFuture::new(RouteFuture::passthrough(self.inner.call(request)));
        };
        let span = tracing::info_span!(
            "provider_fallback",
            requested = request.model(),
            served = Empty,
            attempts = Empty,
            latency_ms = Empty,
        );
        // The ready service goes to the future; a clone stays for the next call.
        let clone = self.inner.clone();
        let ready = mem::replace(&mut self.inner, clone);
        ResponseFuture::new(RouteFuture::route(
            ready,
            request,
            source,
            self.policy.clone(),
            span,
        ))
    }
}
