//! The usage-aware part of a [`BalanceBuilder`]: strategy, limits, usage store.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use super::config::BalanceBuilder;
use crate::error::ConfigError;
use crate::usage::tracker::Tracker;
use crate::usage::{InMemoryUsage, Limits, RoutingStrategy, UsageStore};

/// The builder's usage settings.
#[derive(Default)]
pub(super) struct UsageSettings {
    strategy: RoutingStrategy,
    latency_buffer: Option<f64>,
    limits: Vec<(String, Limits)>,
    store: Option<Arc<dyn UsageStore>>,
}

/// Candidates within 10 % of the fastest share the load.
const DEFAULT_LATENCY_BUFFER: f64 = 0.1;

impl BalanceBuilder {
    /// How to pick among the available candidates (default
    /// [`RoutingStrategy::Weighted`]). See [`usage`](crate::usage).
    pub fn strategy(mut self, strategy: RoutingStrategy) -> Self {
        self.usage.strategy = strategy;
        self
    }

    /// For [`RoutingStrategy::LowestLatency`]: candidates whose average
    /// latency is within this share of the fastest's (0.1: 10 % slower at
    /// most) share the load. Default 0.1.
    pub fn latency_buffer(mut self, buffer: f64) -> Self {
        self.usage.latency_buffer = Some(buffer);
        self
    }

    /// Never sends `model` more than `limits` per minute: when it would
    /// exceed one, the model is skipped like a cooling one.
    pub fn limits(mut self, model: impl Into<String>, limits: Limits) -> Self {
        let model = model.into();
        self.usage.limits.retain(|(m, _)| *m != model);
        self.usage.limits.push((model, limits));
        self
    }

    /// Counts usage in `store` instead of a new [`InMemoryUsage`], e.g. a
    /// [`RedisUsage`](crate::usage::RedisUsage) shared by several processes.
    pub fn usage_store(self, store: impl UsageStore) -> Self {
        self.shared_usage_store(Arc::new(store))
    }

    /// Counts usage in a store shared with other layers.
    pub fn shared_usage_store(mut self, store: Arc<dyn UsageStore>) -> Self {
        self.usage.store = Some(store);
        self
    }
}

impl UsageSettings {
    /// The tracker for these settings, if any is needed; problems go to `errors`.
    pub(super) fn build(
        self,
        candidates: &HashSet<&str>,
        errors: &mut ConfigError,
    ) -> Option<Arc<Tracker>> {
        let buffer = self.latency_buffer.unwrap_or(DEFAULT_LATENCY_BUFFER);
        if !(buffer.is_finite() && buffer >= 0.0) {
            errors.push(
                "latency_buffer",
                format!("{buffer} is not a finite number of at least 0"),
            );
        }
        let mut limits = HashMap::new();
        for (model, l) in self.limits {
            let path = format!("limits.{model}");
            if !candidates.contains(model.as_str()) {
                errors.push(&path, format!("{model:?} is not a candidate of any route"));
            }
            if l.rpm == Some(0) || l.tpm == Some(0) {
                errors.push(&path, "a limit of 0 would never admit a call");
            }
            limits.insert(model, l);
        }
        if self.strategy == RoutingStrategy::Weighted && limits.is_empty() {
            return None;
        }
        let store = self.store.unwrap_or_else(|| Arc::new(InMemoryUsage::new()));
        let models = candidates.iter().map(|m| Arc::from(*m));
        Some(Arc::new(Tracker::new(
            self.strategy,
            buffer,
            models,
            &limits,
            store,
        )))
    }
}

impl fmt::Debug for UsageSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UsageSettings")
            .field("strategy", &self.strategy)
            .field("latency_buffer", &self.latency_buffer)
            .field("limits", &self.limits)
            .field("store", &self.store.as_ref().map(|_| ".."))
            .finish()
    }
}
