//! A per-model circuit breaker with adaptive admission: a model that is
//! really down is spared, while one failing now and then keeps serving.
//!
//! Each model's breaker is **closed** (calls go through) until it trips:
//! after N consecutive counting failures, when failures make up a share of
//! the calls over a rolling window (given a minimum number of calls), at
//! once for the provider's `Retry-After` when a failure carries one, or at
//! once for a model the provider does not know. It is then **open**: calls
//! fail fast with [`ErrorKind::CoolingDown`], the time it ends
//! ([`ChatError::cooling_until`], also its `retry_after`), and no upstream
//! call, unless the [`AllCooling`] policy lets one through (see below). When
//! the cooldown has passed it is **half-open**: exactly one call goes
//! through as a probe while the others keep failing fast; the probe's
//! success closes the breaker, its failure reopens it (for the same
//! cooldown, or a growing one if configured). A probe that is cancelled
//! frees its slot for the next call.
//!
//! From code: [`CooldownLayer::builder`]; from a config file's
//! `[cooldown]`: [`CooldownConfig`], checked and built by
//! [`CooldownLayer::from_config`].
//!
//! # Admission: why not a hard skip on the first fault
//!
//! A breaker that opens on one 429 or 401 refuses requests that would have
//! succeeded: with three providers each failing 15 % of calls at random,
//! two of three are often cooling at once, and a route then fails calls
//! that trying the candidates in turn would have served. So the policy is
//! built from the known answers instead:
//!
//! - **Trip on a failure ratio, not on one fault.** A 429 without
//!   `Retry-After` and a 401/403 count toward tripping like a 500
//!   ([`default_verdict`]); the default rules, 5 consecutive failures or
//!   half of at least 20 calls over 30 s, ignore scattered faults and catch
//!   a dead provider within a few calls. A failure that says how long calls
//!   will fail (`Retry-After`) still cools for that time. A bad key is a
//!   key problem: [`Credentials`](crate::providers::credentials::Credentials) rotates and cools keys
//!   one by one; with a single key, a 401 fails every call, so the
//!   consecutive rule opens the model's breaker after 5 calls.
//! - **Client-side adaptive throttling** ([`AdaptiveThrottle`], the Google
//!   SRE book's "Handling Overload"): each call to a model is shed locally
//!   with probability `max(0, (requests − K·accepts) / (requests + 1))` over
//!   a 30 s window, `K = 2` by default, once 10 calls are in the window (at
//!   lower traffic the consecutive rule protects). Nothing is shed while at least half
//!   the calls succeed; a model that answers nothing sees only a handful of
//!   calls per window, so the calls it does get are the ones that notice it
//!   is back. The half-open probe is never shed, and its success (or a
//!   forced call's) clears the model's counts: the breaker closing says the
//!   model is back, and a window of outage history must not keep shedding
//!   its traffic. A shed call is a
//!   `CoolingDown` error without an upstream call (a skip in the attempt
//!   log); routing layers move on to the next candidate.
//! - **A cooling candidate is a last resort, not a refusal**
//!   ([`AllCooling::TryEarliest`], the default): when a request has no
//!   candidate left but cooling ones (all of them from the start, or the
//!   rest after the others failed), the one that recovers first gets one
//!   forced call, through the throttle. A model requested directly is its
//!   own only candidate and is treated the same way. With
//!   [`AllCooling::FailFast`] such a request fails at once, with the
//!   earliest recovery as `retry_after`.
//! - **One attempt for a probe or a forced call.** Both are marked
//!   [`SingleAttempt`](crate::layers::health::SingleAttempt), which `Retry` honours: a
//!   model that was failing gets one look, not a burst of retries.
//! - **A cap per call.** The routing layers cap a call's upstream calls,
//!   retries and fallbacks together
//!   ([`MaxUpstreamCalls::DEFAULT`](crate::chat::MaxUpstreamCalls::DEFAULT), 4).
//!
//! Like a retry budget ([`RetryBudget`](crate::layers::retry::RetryBudget)), these bound
//! the extra load that failures cause in proportion to the traffic that
//! succeeds, instead of by fixed counts that are either too strict for
//! scattered faults or too loose for an outage.
//!
//! A streamed answer is judged when its stream ends, not when it commits
//! (its first content chunk): a normal end is a success, an error item (a
//! stream cut or stalled after its first token) counts as that error does.
//! A probe's stream must therefore finish for the breaker to close; one
//! dropped before its end frees the slot, like a cancelled probe.
//!
//! What counts is the failure-class table by default ([`default_verdict`]),
//! overridable by kinds or by a function; the thresholds and cooldowns are
//! per model (see [`CooldownBuilder`] for the defaults). The breaker state
//! sits in a [`CooldownStore`], in memory by default (the throttle's counts
//! stay in each process, as client-side throttling intends);
//! [`CooldownLayer::health`] reads it so balance and fallback layers skip
//! open models without calling them. A refused or shed call is logged in
//! the attempt log with `upstream: false`.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use llm_fallback::mock::{MockProvider, MockReply};
//! use llm_fallback::layers::health::AllCooling;
//! use llm_fallback::{ChatRequest, CooldownLayer, ErrorKind, Message};
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
//! let mock = MockProvider::new();
//! mock.script("azure/gpt-4o", [MockReply::error(ErrorKind::RateLimited)
//!     .with_retry_after(Duration::from_secs(20))]);
//! let cooldown = CooldownLayer::builder()
//!     .when_all_cooling(AllCooling::FailFast)
//!     .consecutive_failures(3)
//!     .cooldown(Duration::from_secs(10))
//!     .build()
//!     .unwrap();
//! let health = cooldown.health();
//! let stack = ServiceBuilder::new().layer(cooldown).service(mock.clone());
//! let request = ChatRequest::new("azure/gpt-4o", [Message::user("hi")]);
//!
//! // A 429 with Retry-After opens the breaker for that long (one without
//! // would only count toward the failure ratio) ...
//! let error = stack.clone().oneshot(request.clone()).await.unwrap_err();
//! assert_eq!(error.kind(), ErrorKind::RateLimited);
//! assert!(!health.is_available("azure/gpt-4o"));
//!
//! // ... so the next call fails fast, without reaching the provider
//! // (`fail_fast`; by default a model requested directly would get one
//! // forced call instead, as a route's last candidate would).
//! let error = stack.clone().oneshot(request.clone()).await.unwrap_err();
//! assert_eq!(error.kind(), ErrorKind::CoolingDown);
//! assert_eq!(mock.call_count("azure/gpt-4o"), 1);
//!
//! // Once it has passed, a probe goes through and closes the breaker.
//! tokio::time::sleep(Duration::from_secs(20)).await;
//! assert!(stack.oneshot(request).await.is_ok());
//! assert!(health.is_available("azure/gpt-4o"));
//! # }
//! ```

mod breaker;
mod config;
mod layer;
mod memory;
mod outcome;
mod policy;
#[cfg(feature = "redis")]
mod redis_store;
mod store;
mod stream;
mod throttle;
mod window;

pub mod future;

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;
use tower_service::Service;

#[cfg(doc)]
use crate::chat::ErrorKind;
use crate::chat::{AttemptLog, ChatError, PerModel};
use crate::layers::health::{
    AllCooling, BreakerTransitions, ForceAttempt, Health, HealthView, Routed,
};
use crate::{ChatRequest, ChatResponse};

pub use self::config::{CooldownConfig, FailureRatioConfig, GrowthConfig, ThrottleConfig};
pub use self::future::ResponseFuture;
pub use self::layer::{CooldownBuilder, CooldownLayer};
pub use self::memory::InMemoryStore;
pub use self::policy::{default_verdict, BreakerSettings, FailureRatio, Growth, Verdict};
#[cfg(feature = "redis")]
pub use self::redis_store::{RedisStore, RedisStoreBuilder};
pub use self::store::{Admission, CooldownStore, Permit, PermitKind, Transition};
pub use self::throttle::AdaptiveThrottle;

use self::outcome::TransitionCounts;
use self::policy::Classifier;
use self::throttle::Throttles;

/// Fails calls to a model whose breaker is open. See the [module docs](self).
#[derive(Clone)]
pub struct Cooldown<S> {
    inner: S,
    shared: Arc<Shared>,
}

/// What every service and future of one layer shares.
pub(crate) struct Shared {
    store: Arc<dyn CooldownStore>,
    settings: PerModel<BreakerSettings>,
    classifier: Classifier,
    max_retry_after: Duration,
    all_cooling: AllCooling,
    throttles: Option<Throttles>,
    transitions: Arc<TransitionCounts>,
}

impl Shared {
    fn health(&self) -> Health {
        let view = StoreHealth(self.store.clone(), self.transitions.clone());
        Health::new(view).with_all_cooling(self.all_cooling)
    }

    /// What the outcome says about the model, with `Retry-After` capped.
    fn verdict(&self, result: &Result<ChatResponse, ChatError>) -> Verdict {
        match result {
            Ok(_) => Verdict::Success,
            Err(e) => self.error_verdict(e),
        }
    }

    /// What an error (of the call, or of its stream) says about the model.
    fn error_verdict(&self, error: &ChatError) -> Verdict {
        match self.classifier.verdict(error) {
            Verdict::Trip(Some(wait)) => Verdict::Trip(Some(wait.min(self.max_retry_after))),
            verdict => verdict,
        }
    }
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cooldown")
            .field("settings", &self.settings)
            .field("classifier", &self.classifier)
            .field("max_retry_after", &self.max_retry_after)
            .field("all_cooling", &self.all_cooling)
            .field("throttles", &self.throttles)
            .finish_non_exhaustive()
    }
}

/// A [`HealthView`] over a shared store, with this process's transitions.
struct StoreHealth(Arc<dyn CooldownStore>, Arc<TransitionCounts>);

impl HealthView for StoreHealth {
    fn cooling_until(&self, model: &str) -> Option<Instant> {
        self.0.cooling_until(model)
    }

    fn transitions(&self, model: &str) -> BreakerTransitions {
        self.1.get(model)
    }
}

impl<S> Cooldown<S> {
    /// Wraps `inner` with the settings and store of `layer` (built by
    /// [`CooldownLayer::new`] or [`CooldownLayer::builder`]).
    pub fn new(inner: S, layer: CooldownLayer) -> Self {
        tower_layer::Layer::layer(&layer, inner)
    }

    /// Which models are cooling down, for balance and fallback layers.
    pub fn health(&self) -> Health {
        self.shared.health()
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

impl<S: fmt::Debug> fmt::Debug for Cooldown<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cooldown")
            .field("inner", &self.inner)
            .field("settings", &self.shared.settings)
            .finish_non_exhaustive()
    }
}

impl<S> Service<ChatRequest> for Cooldown<S>
where
    S: Service<ChatRequest, Response = ChatResponse, Error = ChatError> + Clone,
{
    type Response = ChatResponse;
    type Error = ChatError;
    type Future = ResponseFuture<S>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ChatError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: ChatRequest) -> Self::Future {
        let start = Instant::now();
        let model = request.model().to_owned();
        // A routing layer applies the all-cooling policy itself; a model
        // requested directly is its own only candidate.
        let extensions = request.extensions();
        let force = extensions.get::<ForceAttempt>().is_some()
            || (self.shared.all_cooling == AllCooling::TryEarliest
                && extensions.get::<Routed>().is_none());
        let mut admission = self.shared.store.admit(&model, force, start);
        let log = AttemptLog::enter(&mut request);
        let call = future::Call::new(self.shared.clone(), model, log, start);
        match admission.now() {
            Some(admission) => ResponseFuture::decided(admission, &mut self.inner, request, call),
            None => {
                // The store answers later: take the service that was polled
                // ready and leave a fresh clone in its place.
                let clone = self.inner.clone();
                let inner = std::mem::replace(&mut self.inner, clone);
                ResponseFuture::admitting(admission, inner, request, call)
            }
        }
    }
}
