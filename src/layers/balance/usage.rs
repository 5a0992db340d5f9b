//! The usage-aware part of a [`BalanceBuilder`]: strategies, limits, usage store.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use super::candidates::Route;
use super::config::BalanceBuilder;
use crate::chat::{validate_model_id, ConfigError};
use crate::layers::usage::tracker::{Pick, Tracker};
use crate::layers::usage::{InMemoryUsage, Limits, RoutingStrategy, UsageStore};

/// The builder's usage settings.
#[derive(Default)]
pub(super) struct UsageSettings {
    strategy: RoutingStrategy,
    latency_buffer: Option<f64>,
    strategy_for: Vec<(String, RoutingStrategy)>,
    latency_buffer_for: Vec<(String, f64)>,
    limits: Vec<(String, Limits)>,
    store: Option<Arc<dyn UsageStore>>,
}

/// Candidates within 10 % of the fastest share the load.
const DEFAULT_LATENCY_BUFFER: f64 = 0.1;

impl BalanceBuilder {
    /// How every route picks among its available candidates (default
    /// [`RoutingStrategy::Weighted`]). See [`usage`](crate::layers::usage).
    pub fn strategy(mut self, strategy: RoutingStrategy) -> Self {
        self.usage.strategy = strategy;
        self
    }

    /// How the route `alias` picks among its available candidates;
    /// overrides [`strategy`](Self::strategy) for that route.
    ///
    /// ```
    /// use llm_fallback::layers::usage::RoutingStrategy;
    /// use llm_fallback::WeightedBalanceLayer;
    ///
    /// let layer = WeightedBalanceLayer::builder()
    ///     .route("gpt-4o", [("azure/gpt-4o", 1.0), ("openai/gpt-4o", 1.0)])
    ///     .route("mini", [("azure/gpt-4o-mini", 1.0), ("openai/gpt-4o-mini", 1.0)])
    ///     .strategy_for("mini", RoutingStrategy::LeastBusy)
    ///     .build();
    /// assert!(layer.is_ok());
    /// ```
    pub fn strategy_for(mut self, alias: impl Into<String>, strategy: RoutingStrategy) -> Self {
        self.usage.strategy_for.push((alias.into(), strategy));
        self
    }

    /// For [`RoutingStrategy::LowestLatency`]: candidates whose average
    /// latency is within this share of the fastest's (0.1: 10 % slower at
    /// most) share the load. Default 0.1.
    pub fn latency_buffer(mut self, buffer: f64) -> Self {
        self.usage.latency_buffer = Some(buffer);
        self
    }

    /// [`latency_buffer`](Self::latency_buffer) for the route `alias` only.
    pub fn latency_buffer_for(mut self, alias: impl Into<String>, buffer: f64) -> Self {
        self.usage.latency_buffer_for.push((alias.into(), buffer));
        self
    }

    /// Never sends `model` more than `limits` per minute through this
    /// layer: when a call would exceed one, the model is skipped like a
    /// cooling one. The limits hold wherever the model is called: drawn by
    /// any route, or requested by its id and passed through (e.g. by an
    /// ordered fallback route above), so `model` need not be a candidate.
    pub fn limits(mut self, model: impl Into<String>, limits: Limits) -> Self {
        let model = model.into();
        self.usage.limits.retain(|(m, _)| *m != model);
        self.usage.limits.push((model, limits));
        self
    }

    /// Counts usage in `store` instead of a new [`InMemoryUsage`], e.g. a
    /// [`RedisUsage`](crate::layers::usage::RedisUsage) shared by several processes.
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
    /// How the route `alias` picks.
    pub(super) fn pick(&self, alias: &str) -> Pick {
        fn last<T: Copy>(list: &[(String, T)], alias: &str) -> Option<T> {
            list.iter().rev().find(|(a, _)| a == alias).map(|x| x.1)
        }
        Pick {
            strategy: last(&self.strategy_for, alias).unwrap_or(self.strategy),
            latency_buffer: last(&self.latency_buffer_for, alias)
                .or(self.latency_buffer)
                .unwrap_or(DEFAULT_LATENCY_BUFFER),
        }
    }

    /// The tracker for these settings over `routes`, if any is needed;
    /// problems go to `errors`.
    pub(super) fn build(
        self,
        routes: &[(String, Route)],
        errors: &mut ConfigError,
    ) -> Option<Arc<Tracker>> {
        let aliases: HashSet<&str> = routes.iter().map(|(a, _)| a.as_str()).collect();
        let buffers = (self
            .latency_buffer
            .map(|b| ("latency_buffer".to_owned(), b))
            .into_iter())
        .chain(
            (self.latency_buffer_for.iter()).map(|(a, b)| (format!("latency_buffer_for.{a}"), *b)),
        );
        for (path, buffer) in buffers {
            if !(buffer.is_finite() && buffer >= 0.0) {
                errors.push(
                    path,
                    format!("{buffer} is not a finite number of at least 0"),
                );
            }
        }
        let overridden = (self.strategy_for.iter().map(|(a, _)| ("strategy_for", a))).chain(
            self.latency_buffer_for
                .iter()
                .map(|(a, _)| ("latency_buffer_for", a)),
        );
        for (what, alias) in overridden {
            if !aliases.contains(alias.as_str()) {
                errors.push(
                    format!("{what}.{alias}"),
                    format!("{alias:?} is not a route alias"),
                );
            }
        }
        let mut limits = HashMap::new();
        for (model, l) in self.limits {
            let path = format!("limits.{model}");
            if let Err(e) = validate_model_id(&model) {
                errors.push(&path, e);
            }
            if l.rpm == Some(0) || l.tpm == Some(0) {
                errors.push(&path, "a limit of 0 would never admit a call");
            }
            limits.insert(model, l);
        }
        let ranked = |r: &Route| r.pick.strategy != RoutingStrategy::Weighted;
        if limits.is_empty() && !routes.iter().any(|(_, r)| ranked(r)) {
            return None;
        }
        // Every candidate (in flight and latency are measured for all), and
        // the limited models called by their ids.
        let mut models: HashMap<Arc<str>, bool> = HashMap::new();
        for (_, route) in routes {
            let by_usage = route.pick.strategy.counts_usage();
            for model in &route.models[..] {
                *models.entry(model.clone()).or_default() |= by_usage;
            }
        }
        for model in limits.keys() {
            models.entry(Arc::from(model.as_str())).or_default();
        }
        let store = self.store.unwrap_or_else(|| Arc::new(InMemoryUsage::new()));
        Some(Arc::new(Tracker::new(models, &limits, store)))
    }
}

impl fmt::Debug for UsageSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UsageSettings")
            .field("strategy", &self.strategy)
            .field("latency_buffer", &self.latency_buffer)
            .field("strategy_for", &self.strategy_for)
            .field("latency_buffer_for", &self.latency_buffer_for)
            .field("limits", &self.limits)
            .field("store", &self.store.as_ref().map(|_| ".."))
            .finish()
    }
}
