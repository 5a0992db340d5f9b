//! Hedged calls: when a route's candidate has not answered within a delay,
//! the next candidate of the same route is called too, and the first to
//! answer serves.
//!
//! A provider that never answers, or sends its first token late, otherwise
//! costs the caller a whole deadline before the fallback starts. A [`Hedge`]
//! set in a routing layer's options
//! ([`RouteOptions::hedge`](crate::RouteOptions::hedge), for
//! [`ProviderFallback`](crate::ProviderFallback) and
//! [`WeightedBalance`](crate::WeightedBalance) alike) bounds that cost by
//! its delay:
//!
//! - A candidate *answers* at the commit point: for a stream, its first
//!   content chunk (the response head arrives long before the first token,
//!   so committing there would pick the wrong racer); otherwise its complete
//!   response.
//! - When the newest running candidate has not answered within the delay,
//!   the route's next available candidate (by the route's own rules:
//!   cooling candidates skipped, never the last-resort call to a cooling
//!   one, within the call's [`MaxUpstreamCalls`](crate::chat::MaxUpstreamCalls))
//!   is called as well, if the [`HedgeBudget`] allows.
//! - The first racer to answer is the one the caller sees; every other one
//!   is dropped at once, which closes its upstream connection and frees its
//!   breaker permit and usage reservation. A dropped racer is logged as
//!   [`Cancelled`](crate::ErrorKind::Cancelled), which is no failure of its
//!   model: it counts toward no breaker or throttle.
//! - A racer that fails lets the others go on; when none is left running,
//!   the route goes on as after any failure.
//!
//! Every racer's attempts are in the call's attempt log; those of hedges are
//! marked [`Attempt::hedge`](crate::chat::Attempt::hedge).
//!
//! With no hedge set, a routed call costs nothing more; with one, a call
//! whose first candidate answers in time costs one timer and one deposit in
//! the budget.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use llm_fallback::layers::hedge::Hedge;
//! use llm_fallback::mock::{MockProvider, MockReply};
//! use llm_fallback::{ChatRequest, Message, ProviderFallbackLayer, RouteOptions};
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
//! let upstream = MockProvider::new();
//! upstream.always("azure/gpt-4o-mini", MockReply::text("late").after(Duration::from_secs(20)));
//!
//! let fallback = ProviderFallbackLayer::builder()
//!     .group(["azure/gpt-4o-mini", "openai/gpt-4o-mini"])
//!     .options(RouteOptions::new().hedge(Hedge::new(Duration::from_millis(500))))
//!     .build()
//!     .unwrap();
//! let service = ServiceBuilder::new().layer(fallback).service(upstream.clone());
//!
//! let started = tokio::time::Instant::now();
//! let request = ChatRequest::new("azure/gpt-4o-mini", [Message::user("hi")]);
//! let response = service.oneshot(request).await.unwrap();
//! assert_eq!(response.model(), "openai/gpt-4o-mini");
//! assert_eq!(started.elapsed(), Duration::from_millis(500));
//! assert!(response.attempts()[1].hedge);
//! # }
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tower::retry::budget::{Budget, TpsBudget};

use crate::chat::ConfigError;
use crate::layers::retry::RetryBudget;

mod config;
mod learned;

pub use self::config::{HedgeConfig, LearnedConfig};
pub use self::learned::{LearnedDelay, LearnedDelayBuilder};

/// When a routed call is hedged, and how many hedges may be made.
///
/// The delay is looked up for the candidate being waited on: its own
/// delay ([`delay_for`](Self::delay_for) with its model id) if it has one,
/// else that of the requested id (a group or route name), else the default.
/// With a [`LearnedDelay`], a model whose delay has been learned is hedged
/// after that one instead (where a fixed delay applies at all).
///
/// Clones share the learned delays.
#[derive(Clone, Debug)]
pub struct Hedge {
    default: Option<Duration>,
    per_id: BTreeMap<String, Option<Duration>>,
    budget: HedgeBudget,
    learned: Option<Arc<LearnedDelay>>,
}

impl Hedge {
    /// Hedges a candidate that has not answered after `delay`, within the
    /// default [`HedgeBudget`].
    pub fn new(delay: Duration) -> Self {
        Hedge {
            default: Some(delay),
            per_id: BTreeMap::new(),
            budget: HedgeBudget::default(),
            learned: None,
        }
    }

    /// Hedges nothing unless [`delay_for`](Self::delay_for) says so.
    pub fn off() -> Self {
        Hedge {
            default: None,
            per_id: BTreeMap::new(),
            budget: HedgeBudget::default(),
            learned: None,
        }
    }

    /// The delay for `id`, a model or a requested group or route name;
    /// `None` hedges no call waiting on it (for a model) or no request
    /// for it (for a name).
    pub fn delay_for(mut self, id: impl Into<String>, delay: Option<Duration>) -> Self {
        self.per_id.insert(id.into(), delay);
        self
    }

    /// Sets the budget (default: [`HedgeBudget::default`]).
    pub fn budget(mut self, budget: HedgeBudget) -> Self {
        self.budget = budget;
        self
    }

    /// Learns the delay per model from the time its calls take to answer
    /// (default: the fixed delays only).
    pub fn learned(mut self, learned: LearnedDelay) -> Self {
        self.learned = Some(Arc::new(learned));
        self
    }

    /// The learned delays, if any (shared by the clones).
    pub(crate) fn learned_delay(&self) -> Option<&Arc<LearnedDelay>> {
        self.learned.as_ref()
    }

    /// Learns into `kept` (what an earlier stack learned) instead, if this
    /// hedge learns at all and with the same settings.
    pub(crate) fn keep_learned(mut self, kept: &Arc<LearnedDelay>) -> Self {
        if self.learned.as_ref().is_some_and(|l| l.same_settings(kept)) {
            self.learned = Some(kept.clone());
        }
        self
    }

    /// The delay after which a call to `model`, for a request naming
    /// `requested`, is hedged; `None` for never.
    pub fn delay(&self, model: &str, requested: &str) -> Option<Duration> {
        let fixed = self
            .per_id
            .get(model)
            .or_else(|| self.per_id.get(requested))
            .copied()
            .unwrap_or(self.default)?;
        let learned = self.learned.as_ref().and_then(|l| l.delay(model));
        Some(learned.unwrap_or(fixed))
    }

    /// Notes that a call to `model` answered after `took`, for the learned
    /// delay if there is one.
    pub(crate) fn observe(&self, model: &str, took: Duration) {
        if let Some(learned) = &self.learned {
            learned.observe(model, took);
        }
    }

    /// Notes that a call to `model` (for `requested`) was cancelled after
    /// `ran`, another racer having answered. Its answer would have taken at
    /// least that long: once that is past its delay, it is observed as such,
    /// so the slow answers that hedging cuts short still count and the
    /// learned delay does not slide down (those cut short earlier tell
    /// nothing, and are not).
    pub(crate) fn observe_cancelled(&self, model: &str, requested: &str, ran: Duration) {
        if let Some(learned) = &self.learned {
            if self
                .delay(model, requested)
                .is_some_and(|delay| ran >= delay)
            {
                learned.observe(model, ran);
            }
        }
    }

    /// Whether no call is ever hedged.
    pub(crate) fn is_off(&self) -> bool {
        self.default.is_none() && self.per_id.values().all(Option::is_none)
    }

    pub(crate) fn budget_ref(&self) -> &HedgeBudget {
        &self.budget
    }
}

/// A shared limit on hedges: each hedged route's call deposits into it,
/// each hedge withdraws, and a hedge the budget cannot pay for is not made
/// (the call waits on the candidates already running).
///
/// Hedges are extra load, and the moment they fire most (a provider slows
/// down) is when that provider and its fallbacks can least take it: a
/// ratio of calls bounds them, as [`RetryBudget`] bounds retries (it is the
/// same `tower` budget).
///
/// Default: a 10 s window, a floor of 1 hedge per second, and hedges up to
/// 10 % of calls.
///
/// ```
/// use std::time::Duration;
/// use llm_fallback::layers::hedge::HedgeBudget;
///
/// // At most 1 hedge per 20 calls in the last 10 s, and no floor.
/// let budget = HedgeBudget::new(Duration::from_secs(10), 0, 0.05).unwrap();
/// # let _ = budget;
/// let bad = HedgeBudget::new(Duration::ZERO, 0, 0.05).unwrap_err();
/// assert!(bad.to_string().contains("hedge.budget.window"));
/// ```
#[derive(Clone)]
pub struct HedgeBudget(RetryBudget);

impl HedgeBudget {
    /// A budget allowing `ratio` hedges per call made within the last
    /// `window` (1 to 60 s), plus `min_per_second` hedges per second in any
    /// case (ratios below 1 are applied as one hedge per `1 / ratio` calls,
    /// rounded down, as tower does).
    pub fn new(window: Duration, min_per_second: u32, ratio: f32) -> Result<Self, ConfigError> {
        RetryBudget::checked("hedge.budget", window, min_per_second, ratio).map(HedgeBudget)
    }

    /// Any `tower` budget, e.g. one shared with other clients.
    pub fn from_budget(budget: impl Budget + Send + Sync + 'static) -> Self {
        HedgeBudget(RetryBudget::from_budget(budget))
    }

    /// Records a call that may be hedged.
    pub(crate) fn deposit(&self) {
        self.0.deposit();
    }

    /// Pays for one hedge; `false` when the budget is spent.
    pub(crate) fn withdraw(&self) -> bool {
        self.0.withdraw()
    }
}

impl Default for HedgeBudget {
    fn default() -> Self {
        HedgeBudget::from_budget(TpsBudget::new(Duration::from_secs(10), 1, 0.1))
    }
}

impl fmt::Debug for HedgeBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HedgeBudget").finish_non_exhaustive()
    }
}
