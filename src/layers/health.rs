//! A read-only view of which models are cooling down, shared by the layers that route.

use std::fmt;
use std::sync::Arc;

use tokio::time::Instant;

/// Tells whether a model's circuit breaker is open.
///
/// [`Cooldown`](crate::Cooldown) provides one; the balance and fallback layers read it
/// to skip open models without calling them.
pub trait HealthView: Send + Sync + 'static {
    /// When `model` accepts calls again, or `None` if it does now.
    fn cooling_until(&self, model: &str) -> Option<Instant>;

    /// How often `model`'s breaker opened and closed, as this process saw
    /// it (default: never, for a view that does not count).
    fn transitions(&self, model: &str) -> BreakerTransitions {
        let _ = model;
        BreakerTransitions::default()
    }
}

/// How often a model's breaker changed state, counted by the process whose
/// calls changed it (with a shared store, each replica counts its own).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BreakerTransitions {
    /// Closed (or half-open) to open: the breaker tripped, or a probe failed.
    pub opened: u64,
    /// Open or half-open to closed: a probe (or forced call) succeeded.
    pub closed: u64,
}

/// A shared [`HealthView`], with the policy for a request whose every
/// candidate is cooling down ([`AllCooling`]), so that the routing layers
/// reading it and the [`Cooldown`](crate::Cooldown) layer providing it treat
/// that case alike.
#[derive(Clone)]
pub struct Health {
    view: Arc<dyn HealthView>,
    all_cooling: AllCooling,
}

impl Health {
    /// Wraps a view, with the default [`AllCooling`] policy.
    pub fn new(view: impl HealthView) -> Self {
        Health {
            view: Arc::new(view),
            all_cooling: AllCooling::default(),
        }
    }

    /// The same view with another [`AllCooling`] policy.
    pub fn with_all_cooling(mut self, policy: AllCooling) -> Self {
        self.all_cooling = policy;
        self
    }

    /// What a request does when no candidate that is not cooling is left.
    pub fn all_cooling(&self) -> AllCooling {
        self.all_cooling
    }

    /// A view in which every model is healthy.
    pub fn always_healthy() -> Self {
        Health::new(AlwaysHealthy)
    }

    /// When `model` accepts calls again, or `None` if it does now.
    pub fn cooling_until(&self, model: &str) -> Option<Instant> {
        self.view.cooling_until(model)
    }

    /// How often `model`'s breaker opened and closed in this process.
    pub fn transitions(&self, model: &str) -> BreakerTransitions {
        self.view.transitions(model)
    }

    /// Whether `model` accepts calls now.
    pub fn is_available(&self, model: &str) -> bool {
        match self.view.cooling_until(model) {
            None => true,
            Some(until) => until <= Instant::now(),
        }
    }
}

impl Default for Health {
    fn default() -> Self {
        Health::always_healthy()
    }
}

impl fmt::Debug for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Health")
            .field("all_cooling", &self.all_cooling)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct AlwaysHealthy;

impl HealthView for AlwaysHealthy {
    fn cooling_until(&self, _model: &str) -> Option<Instant> {
        None
    }
}

/// A request extension that asks the `Cooldown` layer to let this call through
/// even though the model's breaker is open (adaptive throttling still applies).
///
/// A routing layer sets it under [`AllCooling::TryEarliest`] when no
/// candidate that is not cooling is left: one call to the one whose cooldown
/// ends first beats failing without any call. A forced call is a single
/// attempt: `Retry` does not retry it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ForceAttempt;

/// A request extension that makes the call a single upstream attempt: the
/// `Retry` layer does not retry it.
///
/// The `Cooldown` layer sets it on the calls it lets through a breaker that
/// is not closed (the half-open probe, a forced call): each is one attempt
/// to learn whether the model is back, not a reason for more load.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SingleAttempt;

/// What a request does when every candidate it has left is cooling down
/// (all of them from the start, or the rest after the others failed); the
/// same for a route, a fallback group and a model requested directly.
///
/// Either way the error that ends such a call carries the earliest known
/// recovery as [`ChatError::retry_after`](crate::ChatError::retry_after).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum AllCooling {
    /// Fail at once, without an upstream call: a cooling model is only
    /// ever called by its half-open probe.
    FailFast,
    /// One attempt (never retried) to the candidate that recovers first, as
    /// a last resort; the adaptive throttle of the `Cooldown` layer may
    /// still shed it when that model has been failing. The default: under
    /// scattered faults a cooling model usually answers, and the throttle
    /// keeps a model that is really down from seeing more than a few calls.
    #[default]
    TryEarliest,
}

impl AllCooling {
    /// The name used in configs: `fail_fast`, `try_earliest`.
    pub fn as_str(self) -> &'static str {
        match self {
            AllCooling::FailFast => "fail_fast",
            AllCooling::TryEarliest => "try_earliest",
        }
    }

    /// Parses [`as_str`](Self::as_str)'s names.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "fail_fast" => Some(AllCooling::FailFast),
            "try_earliest" => Some(AllCooling::TryEarliest),
            _ => None,
        }
    }
}

/// Marks a request sent by a routing layer to one of its candidates: the
/// routing layer applies the [`AllCooling`] policy itself, so `Cooldown`
/// does not apply it again.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Routed;
