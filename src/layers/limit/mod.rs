//! Per-deployment limits: a call that would exceed a model's requests or tokens per minute is refused without an upstream call.
//!
//! A [`Limit`] service knows each model's [`Limits`] (requests and tokens
//! per minute, as the provider enforces them). Before each call to a model
//! with limits it reserves the request and an estimate of its tokens with a
//! [`UsageStore`], atomically with the check that they fit. A call that
//! would exceed a limit is refused the way a cooling model is: a
//! [`CoolingDown`](crate::ErrorKind::CoolingDown) error, no upstream call,
//! so a routing layer above skips to its next candidate without counting an
//! attempt. Calls of models without limits pass through untouched.
//!
//! **Tokens** are estimated before the call (a quarter of the prompt's text
//! bytes, plus `max_completion_tokens` or `max_tokens` when the request sets
//! them) and settled from the response's `usage` after it. A stream settles
//! when its usage chunk passes (OpenAI sends one only when the request asks
//! with `stream_options.include_usage`). An answer without usage, a stream
//! that ends, fails or is dropped before its usage chunk, and a call the
//! caller cancels settle an estimate instead: the prompt's plus a quarter of
//! the answer's text bytes seen so far, so the completion budget is free
//! again at once, not when the window ends. A failed call counts as a
//! request without tokens; a call refused below this layer (a cooling
//! model) counts as nothing.
//!
//! Counts live in memory ([`InMemoryUsage`], the default) or on Redis
//! ([`RedisUsage`]), so that several gateway replicas share one limit. The
//! layer's [`UsageView`] is the read-only side: a
//! [`WeightedBalance`](crate::WeightedBalance) given it does not draw a
//! model whose last known usage fills a limit, and its
//! [`LowestUsage`](crate::layers::balance::RoutingStrategy::LowestUsage) strategy ranks by it.
//!
//! # Example
//!
//! ```
//! use llm_fallback::layers::limit::{LimitLayer, Limits};
//! use llm_fallback::mock::MockProvider;
//! use llm_fallback::{ChatRequest, Message, WeightedBalanceLayer};
//! use llm_fallback::layers::balance::RoutingStrategy;
//! use tower::{Service, ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
//! let mock = MockProvider::new();
//! let limit = LimitLayer::builder()
//!     .limits("azure/gpt-4o", Limits::default().with_rpm(2))
//!     .limits("openai/gpt-4o", Limits::default().with_rpm(1))
//!     .build()
//!     .unwrap();
//! let balance = WeightedBalanceLayer::builder()
//!     .route("gpt-4o", [("azure/gpt-4o", 1.0), ("openai/gpt-4o", 1.0)])
//!     .strategy(RoutingStrategy::LowestUsage)
//!     .usage(limit.usage())
//!     .build()
//!     .unwrap();
//! let mut service = ServiceBuilder::new()
//!     .layer(balance)
//!     .layer(limit)
//!     .service(mock.clone());
//! let request = ChatRequest::new("gpt-4o", [Message::user("hi")]);
//!
//! for _ in 0..3 {
//!     service.ready().await.unwrap().call(request.clone()).await.unwrap();
//! }
//! // Both are full for this minute: the next call fails fast, without an upstream call.
//! let error = service.ready().await.unwrap().call(request).await.unwrap_err();
//! assert_eq!(error.kind(), llm_fallback::ErrorKind::CoolingDown);
//! assert_eq!(mock.call_count("azure/gpt-4o"), 2);
//! assert_eq!(mock.call_count("openai/gpt-4o"), 1);
//! # }
//! ```

mod config;
pub mod future;
mod guard;
mod layer;
mod memory;
mod store;
mod tokens;
mod view;

#[cfg(feature = "redis")]
mod redis_store;

use std::mem;
use std::sync::Arc;
use std::task::{Context, Poll};

use tower_service::Service;

pub use self::config::{LimitConfig, Limits};
pub use self::future::ResponseFuture;
pub use self::layer::{LimitBuilder, LimitLayer};
pub use self::memory::InMemoryUsage;
#[cfg(feature = "redis")]
pub use self::redis_store::RedisUsage;
pub use self::store::{Grant, Reservation, UsageStore, WindowUsage};
pub use self::view::UsageView;

use self::future::Reserving;
use self::guard::{over_limit, Guard};
use self::tokens::{estimate_tokens, prompt_tokens};
use self::view::Shared;
use crate::chat::ChatError;
use crate::{ChatRequest, ChatResponse};

/// Refuses a call that would exceed its model's limits, and counts the
/// usage of the calls it lets through. See the [module docs](self).
#[derive(Clone, Debug)]
pub struct Limit<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> Limit<S> {
    /// Wraps `inner` with the limits of `layer` (built by [`LimitLayer::builder`]).
    pub fn new(inner: S, layer: LimitLayer) -> Self {
        Limit {
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

impl<S> Service<ChatRequest> for Limit<S>
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
        let Some((model, limits)) = self.shared.get(request.model()) else {
            return ResponseFuture::plain(self.inner.call(request));
        };
        let model = model.clone();
        let prompt = prompt_tokens(&request);
        let mut reservation =
            (self.shared.store).reserve(&model, limits, estimate_tokens(&request));
        match reservation.now() {
            Some(Reservation::Granted(grant)) => {
                let guard = Guard::new(self.shared.clone(), model, grant, prompt);
                ResponseFuture::calling(self.inner.call(request), guard)
            }
            Some(Reservation::Denied { until }) => {
                ResponseFuture::denied(over_limit(&model, limits, until))
            }
            None => {
                // The store answers later: take the service that was polled ready.
                let clone = self.inner.clone();
                ResponseFuture::reserving(Reserving {
                    reservation,
                    service: mem::replace(&mut self.inner, clone),
                    request: Some(request),
                    shared: self.shared.clone(),
                    model,
                    prompt,
                })
            }
        }
    }
}
