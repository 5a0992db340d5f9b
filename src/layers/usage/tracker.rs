//! What a balance layer knows of each deployment: its limits, calls in
//! flight, recent latency and usage, and how a strategy ranks them.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::config::{Limits, RoutingStrategy};
use super::store::UsageStore;
use crate::chat::{Content, ContentPart};
use crate::clamp;
use crate::ChatRequest;

/// How much a new latency sample weighs in the moving average.
const SMOOTHING: f64 = 0.25;

/// How one route picks among its available candidates.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Pick {
    pub(crate) strategy: RoutingStrategy,
    /// For the lowest latency: the share within which candidates tie.
    pub(crate) latency_buffer: f64,
}

/// The per-deployment state of one balance layer, shared by its services.
pub(crate) struct Tracker {
    models: HashMap<Arc<str>, ModelStats>,
    pub(crate) store: Arc<dyn UsageStore>,
}

pub(crate) struct ModelStats {
    pub(crate) limits: Limits,
    /// Whether calls are counted with the store (limits, or a strategy that
    /// ranks by usage).
    pub(crate) counted: bool,
    in_flight: AtomicU32,
    /// Moving average, in seconds; `None` until the first sample.
    latency: Mutex<Option<f64>>,
}

impl Tracker {
    /// Tracks `models`, each with whether a route ranks it by usage.
    pub(crate) fn new(
        models: impl IntoIterator<Item = (Arc<str>, bool)>,
        limits: &HashMap<String, Limits>,
        store: Arc<dyn UsageStore>,
    ) -> Self {
        let models = models
            .into_iter()
            .map(|(model, ranked_by_usage)| {
                let limits = limits.get(&*model).copied().unwrap_or_default();
                let stats = ModelStats {
                    limits,
                    counted: limits.is_limited() || ranked_by_usage,
                    in_flight: AtomicU32::new(0),
                    latency: Mutex::new(None),
                };
                (model, stats)
            })
            .collect();
        Tracker { models, store }
    }

    /// The deployment's id (shared) and state, if a route lists it.
    pub(crate) fn get(&self, model: &str) -> Option<(&Arc<str>, &ModelStats)> {
        self.models.get_key_value(model)
    }

    /// When `model` has room again, if its last known usage fills a limit.
    pub(crate) fn limited_until(&self, model: &str, now: Instant) -> Option<Instant> {
        let (_, stats) = self.get(model)?;
        if !stats.limits.is_limited() {
            return None;
        }
        let usage = self.store.usage(model)?;
        let full = !stats.limits.admits(usage.requests, usage.tokens, 1);
        (full && usage.resets_at > now).then_some(usage.resets_at)
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
        let Some((_, stats)) = self.get(model) else {
            return 0.0;
        };
        match strategy {
            RoutingStrategy::Weighted => 0.0,
            RoutingStrategy::LeastBusy => f64::from(stats.in_flight.load(Ordering::Relaxed)),
            RoutingStrategy::LowestUsage => self
                .store
                .usage(model)
                .map_or(0.0, |u| stats.limits.utilization(u.requests, u.tokens)),
            RoutingStrategy::LowestLatency => stats.latency().unwrap_or(0.0),
        }
    }
}

impl ModelStats {
    pub(crate) fn started(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn ended(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    pub(crate) fn record_latency(&self, sample: Duration) {
        let sample = sample.as_secs_f64();
        let mut avg = self.latency.lock().unwrap_or_else(|e| e.into_inner());
        *avg = Some(match *avg {
            None => sample,
            Some(avg) => avg + SMOOTHING * (sample - avg),
        });
    }

    fn latency(&self) -> Option<f64> {
        *self.latency.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl fmt::Debug for Tracker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tracker")
            .field("models", &self.models.len())
            .finish_non_exhaustive()
    }
}

/// The tokens a call may use, before it is made: its [prompt](prompt_tokens)
/// plus the completion budget the request sets (`max_completion_tokens` or
/// `max_tokens`). Both come from the client: each is clamped, so a
/// `max_tokens` near `u64::MAX` is a large count, not an overflow.
pub(crate) fn estimate_tokens(request: &ChatRequest) -> u64 {
    let budget = ["max_completion_tokens", "max_tokens"]
        .iter()
        .find_map(|k| request.extra().get(*k).and_then(|v| v.as_u64()))
        .unwrap_or(0);
    clamp::tokens(prompt_tokens(request) + clamp::tokens(budget))
}

/// The prompt's tokens, estimated: a quarter of its text bytes (about 4
/// characters per token in English).
pub(crate) fn prompt_tokens(request: &ChatRequest) -> u64 {
    let bytes: usize = request
        .all_messages()
        .map(|m| match &m.content {
            None => 0,
            Some(Content::Text(text)) => text.len(),
            Some(Content::Parts(parts)) => parts
                .iter()
                .map(|p| match p {
                    ContentPart::Text(t) => t.text.len(),
                    _ => 0,
                })
                .sum(),
        })
        .sum();
    text_tokens(bytes)
}

/// Tokens in `bytes` of text, estimated (rounded up) and clamped.
pub(crate) fn text_tokens(bytes: usize) -> u64 {
    clamp::tokens(u64::try_from(bytes).unwrap_or(u64::MAX).div_ceil(4))
}
