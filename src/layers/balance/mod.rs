//! Weighted load balancing: each request draws a candidate by weight, and draws again on failure.
//!
//! A *route* maps an alias (what requests name, e.g. `gpt-4o`) to candidate
//! models with weights. Each request for the alias draws one candidate by
//! weight among those that are not cooling down (with a
//! [`Health`](crate::layers::health::Health) view, `with_health`). On a failure whose kind
//! falls back ([`ErrorKind::is_fallbackable`](crate::ErrorKind::is_fallbackable)
//! by default, overridable per kind) it draws again from the candidates left,
//! with their weights renormalised; a candidate is never tried twice for one
//! request.
//!
//! A request that names one of the candidates (`azure/gpt-4o`) tries it
//! first, then the draws. Candidates of weight zero are only used when named:
//! a way to keep a model reachable without sending it traffic. Requests for a
//! model that is neither an alias nor a candidate pass through untouched.
//!
//! Draws use a [`SharedRng`] (seed it for reproducible
//! runs), or a [`StickyKey`] request extension for the first draw: the same
//! key gets the same first choice. When no candidate is left but cooling
//! ones, the health view's [`AllCooling`](crate::layers::health::AllCooling) policy decides,
//! as for [`ProviderFallback`](crate::ProviderFallback): by default the one
//! whose cooldown ends first gets a single call with
//! [`ForceAttempt`](crate::layers::health::ForceAttempt). When all fail, the error is
//! [`ChatError::all_failed`](crate::ChatError::all_failed). Calls, attempts
//! and errors are handled by the same engine as
//! [`ProviderFallback`](crate::ProviderFallback), mid-stream recovery
//! included ([`RouteOptions::recover_streams`](crate::RouteOptions::recover_streams), off by default).
//!
//! Beside the weighted draw, `.strategy(..)` (or `.strategy_for(alias, ..)`,
//! per route) ranks the available candidates: the [`RoutingStrategy`] picks
//! the least busy, the least used or the fastest, and the weighted draw
//! breaks ties. Calls in flight and latency are measured by this layer;
//! usage against limits is read from a [`UsageView`](crate::layers::limit::UsageView)
//! (`.usage(..)`): limits themselves are held by a
//! [`Limit`](crate::layers::limit::Limit) layer below this one, whose
//! refusals this layer skips like cooling models. With a view, a candidate
//! whose last known usage fills a limit is not drawn while others are
//! available.
//!
//! Weights that are negative, NaN or infinite, routes whose weights are all
//! zero, empty routes and malformed ids are rejected when the layer is built.
//!
//! # Example
//!
//! ```
//! use llm_fallback::mock::{MockProvider, MockReply};
//! use llm_fallback::{ChatRequest, ErrorKind, Message, SharedRng, WeightedBalanceLayer};
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let upstream = MockProvider::new();
//! upstream.always("azure/gpt-4o", MockReply::error(ErrorKind::Server));
//!
//! let balance = WeightedBalanceLayer::builder()
//!     .route("gpt-4o", [("azure/gpt-4o", 0.7), ("openai/gpt-4o", 0.3)])
//!     .rng(SharedRng::seeded(1))
//!     .build()
//!     .unwrap();
//! let service = ServiceBuilder::new().layer(balance).service(upstream);
//!
//! // Whichever is drawn first, azure fails and openai serves.
//! let response = service
//!     .oneshot(ChatRequest::new("gpt-4o", [Message::user("hi")]))
//!     .await
//!     .unwrap();
//! assert_eq!(response.model(), "openai/gpt-4o");
//! # }
//! ```

mod builder;
mod candidates;
mod config;
pub mod future;
mod layer;
mod load;
mod ranking;
mod strategy;

use std::mem;
use std::sync::Arc;
use std::task::{Context, Poll};

use tower_service::Service;
use tracing::field::Empty;

pub use self::builder::BalanceBuilder;
pub use self::candidates::StickyKey;
pub use self::config::{BalanceConfig, RouteCandidates, WeightedModel};
pub use self::future::ResponseFuture;
pub use self::layer::WeightedBalanceLayer;
pub use self::strategy::RoutingStrategy;

use self::candidates::BalanceTable;
use self::load::{measure, Load, Measured};
use self::strategy::Ranking;
use crate::layers::route::future::RouteFuture;
use crate::layers::route::RoutePolicy;
use crate::rng::SharedRng;
use crate::{ChatError, ChatRequest, ChatResponse};

/// Routes each request for an alias to a candidate drawn by weight, and draws
/// again when it fails. See the [module docs](self).
#[derive(Clone, Debug)]
pub struct WeightedBalance<S> {
    inner: S,
    table: Arc<BalanceTable>,
    policy: Arc<RoutePolicy>,
    rng: SharedRng,
    ranking: Option<Arc<Ranking>>,
    load: Option<Arc<Load>>,
}

impl<S> WeightedBalance<S> {
    /// Wraps `inner` with the routes of `layer` (built by
    /// [`WeightedBalanceLayer::builder`]).
    pub fn new(inner: S, layer: WeightedBalanceLayer) -> Self {
        WeightedBalance {
            inner,
            table: layer.table,
            policy: layer.policy,
            rng: layer.rng,
            ranking: layer.ranking,
            load: layer.load,
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

impl<S> Service<ChatRequest> for WeightedBalance<S>
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
        let sticky = request.extensions().get::<StickyKey>();
        let ranking = self.ranking.as_ref();
        let Some(source) = self
            .table
            .candidates(request.model(), sticky, &self.rng, ranking)
        else {
            // Not routed, yet a candidate's calls count toward its load.
            let future = measure(&mut self.inner, self.load.as_ref(), request);
            return ResponseFuture::new(RouteFuture::passthrough(future));
        };
        let span = tracing::info_span!(
            "weighted_balance",
            requested = request.model(),
            served = Empty,
            attempts = Empty,
            latency_ms = Empty,
        );
        // The ready service goes to the future; a clone stays for the next call.
        let clone = self.inner.clone();
        let ready = mem::replace(&mut self.inner, clone);
        ResponseFuture::new(RouteFuture::route(
            Measured::new(ready, self.load.clone()),
            request,
            source,
            self.policy.clone(),
            span,
        ))
    }
}
