//! The candidate-trying engine shared by the routing layers
//! ([`ProviderFallback`](crate::ProviderFallback) and
//! [`WeightedBalance`](crate::WeightedBalance)).
//!
//! A layer decides *which* models a request may go to, in what order (a
//! [`CandidateSource`]); the engine ([`future::RouteFuture`]) does the rest
//! the same way for both: it calls the inner service once per candidate,
//! records each attempt, skips models that are cooling down without calling
//! them, gives the earliest-ending one a single forced call when no other
//! candidate is left (under [`AllCooling::TryEarliest`](crate::layers::health::AllCooling)),
//! stops at the call's cap on upstream calls
//! ([`MaxUpstreamCalls`]), decides from the error's kind whether to move
//! on, and builds the final error, stamped with the earliest known
//! recovery of its candidates as `retry_after`.
//!
//! With a [`Hedge`] set, a candidate that has not answered within its delay
//! races the next available one (`hedge.rs`); the main call and the
//! hedges each record in their own attempt log until they are done.

use std::collections::HashSet;
use std::sync::Arc;

use tokio::time::Instant;

use crate::chat::{ChatError, ErrorKind, MaxUpstreamCalls, PerModel};
use crate::layers::health::Health;
use crate::layers::hedge::Hedge;

mod candidates;
pub(crate) mod future;
mod hedge;
mod identity;
mod options;
mod race;
mod recover;
mod routing;
mod splice;

pub(crate) use self::options::check_recovered;
pub use self::options::RouteOptions;

/// The candidates of one request, produced one at a time.
pub(crate) trait CandidateSource: Send + 'static {
    /// The next model to try, or `None` when none is left.
    ///
    /// `health` lets a source prefer models that are not cooling down; the
    /// engine checks again and skips (and logs) a cooling model it is given.
    fn next(&mut self, health: &Health) -> Option<Arc<str>>;

    /// Called after `model` failed with `error` (not a cooling skip). Returns
    /// whether the source re-routed the call to a route dedicated to the
    /// error's kind, which makes the engine go on whatever the kind's default.
    fn reroute(&mut self, _model: &str, _error: &ChatError) -> bool {
        false
    }
}

/// What the engine needs besides the candidates; one per layer, shared.
#[derive(Clone, Debug)]
pub(crate) struct RoutePolicy {
    /// Which models are cooling down.
    pub(crate) health: Health,
    /// How many candidates may be called after the first failed upstream
    /// call; `None` for no bound. Cooling skips do not count.
    pub(crate) max_fallbacks: Option<usize>,
    /// The call's cap on upstream calls, retries included, inserted as
    /// [`MaxUpstreamCalls`] unless the request has one; `None` for no cap.
    pub(crate) max_upstream_calls: Option<usize>,
    /// Overrides of [`ErrorKind::is_fallbackable`].
    pub(crate) fallback_on: Vec<(ErrorKind, bool)>,
    /// Mid-stream recovery.
    pub(crate) recovery: Recovery,
    /// Hedged calls; `None` when off.
    pub(crate) hedge: Option<Arc<Hedge>>,
}

/// Whether and how a committed stream that is cut or stalls is finished on
/// the next candidate.
#[derive(Clone, Debug, Default)]
pub(crate) struct Recovery {
    /// Per requested id (a model or a group name); off by default.
    pub(crate) enabled: PerModel<bool>,
    /// The models that continue a final assistant message (prefill).
    pub(crate) prefill: HashSet<String>,
}

impl Recovery {
    /// Whether recovery applies to a request for `requested`.
    pub(crate) fn enabled_for(&self, requested: &str) -> bool {
        *self.enabled.get(requested)
    }

    /// Whether `model` continues a partial answer sent as the last message.
    pub(crate) fn prefills(&self, model: &str) -> bool {
        self.prefill.contains(model)
    }
}

impl Default for RoutePolicy {
    fn default() -> Self {
        RoutePolicy {
            health: Health::default(),
            max_fallbacks: None,
            max_upstream_calls: Some(MaxUpstreamCalls::DEFAULT),
            fallback_on: Vec::new(),
            recovery: Recovery::default(),
            hedge: None,
        }
    }
}

impl RoutePolicy {
    /// Sets the hedge (off when it hedges nothing).
    pub(crate) fn set_hedge(&mut self, hedge: Hedge) {
        self.hedge = (!hedge.is_off()).then(|| Arc::new(hedge));
    }

    /// Whether an error of `kind` moves the call on to the next candidate.
    pub(crate) fn falls_back_on(&self, kind: ErrorKind) -> bool {
        self.fallback_on
            .iter()
            .rev()
            .find(|(k, _)| *k == kind)
            .map_or_else(|| kind.is_fallbackable(), |(_, on)| *on)
    }

    /// Sets whether `kind` triggers a fallback.
    pub(crate) fn set_fallback_on(&mut self, kind: ErrorKind, on: bool) {
        self.fallback_on.retain(|(k, _)| *k != kind);
        self.fallback_on.push((kind, on));
    }
}

/// When `model` accepts calls again, if it is cooling down now.
pub(crate) fn cooling_until(health: &Health, model: &str) -> Option<Instant> {
    health
        .cooling_until(model)
        .filter(|until| *until > Instant::now())
}

/// Parses an [`ErrorKind`] from its name in the failure-class table
/// (`rate_limited`, `context_window_exceeded` ...).
pub(crate) fn parse_kind(name: &str) -> Result<ErrorKind, String> {
    ErrorKind::ALL
        .into_iter()
        .find(|k| k.as_str() == name)
        .ok_or_else(|| {
            let known: Vec<_> = ErrorKind::ALL.iter().map(|k| k.as_str()).collect();
            format!("unknown error kind {name:?} (known: {})", known.join(", "))
        })
}
