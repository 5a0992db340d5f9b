//! How a route ranks its available candidates: the [`RoutingStrategy`], and
//! the views it reads (the load this layer measures, the limit layer's usage).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::load::Load;
use crate::layers::limit::UsageView;

/// How one route picks among its available candidates.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Pick {
    pub(crate) strategy: RoutingStrategy,
    /// For the lowest latency: the share within which candidates tie.
    pub(crate) latency_buffer: f64,
}

/// How a balance layer picks among the candidates that are available (not
/// cooling down, not at a limit). Every strategy breaks ties by a weighted
/// draw, so weights still matter among equals.
///
/// In config: `"weighted"`, `"least_busy"`, `"lowest_usage"`, `"lowest_latency"`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoutingStrategy {
    /// A draw by weight (the default).
    #[default]
    Weighted,
    /// The candidate with the fewest calls in flight from this process
    /// (a stream counts until it ends).
    LeastBusy,
    /// The candidate with the most headroom against its limits: the lowest
    /// [`Limits::utilization`](crate::layers::limit::Limits::utilization) in the current
    /// minute, as the [`UsageView`] given to the builder reports it. A
    /// candidate without limits (or a layer without a view) has full headroom.
    LowestUsage,
    /// The candidate with the lowest moving average of recent latency (time
    /// to the response, or to the first token of a stream), measured by this
    /// process. Candidates within the latency buffer of the fastest share the
    /// load; a candidate not measured yet is tried first.
    LowestLatency,
}

impl RoutingStrategy {
    /// Whether the strategy ranks by what this process measures (calls in
    /// flight, latency).
    pub(super) fn measures_load(self) -> bool {
        matches!(
            self,
            RoutingStrategy::LeastBusy | RoutingStrategy::LowestLatency
        )
    }
}

/// What ranking reads: the calls in flight and latency this layer measures
/// (for the strategies that rank by them), and a limit layer's usage.
#[derive(Debug)]
pub(crate) struct Ranking {
    pub(super) load: Option<Arc<Load>>,
    pub(super) usage: Option<UsageView>,
}

impl Ranking {
    /// Whether `model`'s last known usage fills one of its limits.
    pub(crate) fn full(&self, model: &str, now: Instant) -> bool {
        (self.usage.as_ref()).is_some_and(|u| u.full_until(model, now).is_some())
    }

    /// The candidates of `set` (bits over `models`) the route's `pick`
    /// ranks best; never empty when `set` is not.
    pub(crate) fn shortlist(&self, pick: Pick, models: &[Arc<str>], set: u64) -> u64 {
        if pick.strategy == RoutingStrategy::Weighted {
            return set;
        }
        let mut scores = [0.0f64; 64];
        let mut best = f64::INFINITY;
        for (i, model) in models.iter().enumerate().take(64) {
            if set & (1 << i) != 0 {
                scores[i] = self.score(pick.strategy, model);
                best = best.min(scores[i]);
            }
        }
        let cutoff = match pick.strategy {
            RoutingStrategy::LowestLatency => best * (1.0 + pick.latency_buffer),
            _ => best,
        };
        (0..models.len().min(64))
            .filter(|i| set & (1 << i) != 0 && scores[*i] <= cutoff)
            .fold(0, |acc, i| acc | (1 << i))
    }

    fn score(&self, strategy: RoutingStrategy, model: &str) -> f64 {
        let load = self.load.as_ref();
        match strategy {
            RoutingStrategy::Weighted => 0.0,
            RoutingStrategy::LeastBusy => load.map_or(0.0, |l| f64::from(l.in_flight(model))),
            RoutingStrategy::LowestUsage => {
                (self.usage.as_ref()).map_or(0.0, |u| u.utilization(model))
            }
            RoutingStrategy::LowestLatency => load.and_then(|l| l.latency(model)).unwrap_or(0.0),
        }
    }
}
