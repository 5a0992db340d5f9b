//! Building a [`WeightedBalanceLayer`]: from code, or from a config value.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::candidates::{BalanceTable, Route, MAX_CANDIDATES};
use super::ranking::RankingSettings;
use super::strategy::RoutingStrategy;
use super::WeightedBalanceLayer;
use crate::chat::{validate_model_id, ConfigError, ErrorKind, PerModel};
use crate::layers::health::Health;
use crate::layers::route::{parse_kind, RoutePolicy};
use crate::rng::SharedRng;

/// The balance settings as plain data (serde).
///
/// ```
/// use llm_fallback::{BalanceConfig, WeightedBalanceLayer};
/// let config: BalanceConfig = serde_json::from_value(serde_json::json!({
///     "routes": {
///         "gpt-4o": {"azure/gpt-4o": 0.7, "openai/gpt-4o": 0.3},
///         "mini": [{"model": "azure/gpt-4o-mini", "weight": 2}, "openai/gpt-4o-mini"]
///     },
///     "seed": 7,
///     "strategy": "least_busy"
/// })).unwrap();
/// let layer = WeightedBalanceLayer::from_config(&config).unwrap();
/// # let _ = layer;
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BalanceConfig {
    /// Alias -> weighted candidates.
    pub routes: BTreeMap<String, RouteCandidates>,
    /// Overrides of which error kinds (by name, e.g. `timeout`) trigger another draw.
    pub fallback_on: BTreeMap<String, bool>,
    /// At most this many draws after the first failed candidate (default: no bound).
    pub max_fallbacks: Option<usize>,
    /// Seeds the draws, for reproducible runs (default: seeded by the OS).
    pub seed: Option<u64>,
    /// How to pick among the available candidates (default `weighted`).
    pub strategy: RoutingStrategy,
    /// For `lowest_latency`: the share within which candidates count as
    /// equally fast (default 0.1).
    pub latency_buffer: Option<f64>,
}

/// A route's candidates: a map from model id to weight, or a list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RouteCandidates {
    /// `{"azure/gpt-4o": 0.7, "openai/gpt-4o": 0.3}`
    Map(BTreeMap<String, f64>),
    /// `[{"model": "azure/gpt-4o", "weight": 0.7}, "openai/gpt-4o"]`
    List(Vec<WeightedModel>),
}

/// One candidate of a list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum WeightedModel {
    /// A model id, weight 1.
    Model(String),
    /// A model id with its weight.
    Weighted {
        /// The model id.
        model: String,
        /// Its weight (relative; need not sum to 1).
        weight: f64,
    },
}

impl RouteCandidates {
    fn pairs(&self) -> Vec<(String, f64)> {
        match self {
            RouteCandidates::Map(map) => map.iter().map(|(m, w)| (m.clone(), *w)).collect(),
            RouteCandidates::List(list) => list
                .iter()
                .map(|c| match c {
                    WeightedModel::Model(m) => (m.clone(), 1.0),
                    WeightedModel::Weighted { model, weight } => (model.clone(), *weight),
                })
                .collect(),
        }
    }
}

/// Builds a [`WeightedBalanceLayer`]. Every mistake is reported by
/// [`build`](Self::build), together.
///
/// Defaults: no route, another draw on the kinds of
/// [`ErrorKind::is_fallbackable`], no bound on draws, draws seeded by the OS,
/// every model healthy, the weighted strategy for every route, no usage view.
#[derive(Debug, Default)]
pub struct BalanceBuilder {
    routes: Vec<(String, Vec<(String, f64)>)>,
    policy: RoutePolicy,
    rng: Option<SharedRng>,
    by_alias_only: bool,
    pub(super) ranking: RankingSettings,
    recover_all: bool,
    recover_for: Vec<(String, bool)>,
    errors: ConfigError,
}

impl BalanceBuilder {
    /// Routes requests for `alias` to `candidates`, `(model id, weight)`
    /// pairs. Weights are relative. A list or a `BTreeMap` keeps seeded draws
    /// reproducible; a `HashMap`'s order changes from run to run.
    pub fn route<I, M>(mut self, alias: impl Into<String>, candidates: I) -> Self
    where
        I: IntoIterator<Item = (M, f64)>,
        M: Into<String>,
    {
        let candidates = candidates.into_iter().map(|(m, w)| (m.into(), w)).collect();
        self.routes.push((alias.into(), candidates));
        self
    }

    /// Routes only requests naming a route's alias. By default a request
    /// naming one of a route's candidates is routed too (that candidate
    /// first, then draws among the others); with this, it passes through to
    /// the inner service, so routes work one way only.
    pub fn by_alias_only(mut self) -> Self {
        self.by_alias_only = true;
        self
    }

    /// Draws with `rng` (seed it for reproducible draws).
    pub fn with_rng(mut self, rng: SharedRng) -> Self {
        self.rng = Some(rng);
        self
    }

    /// Draws only among candidates that `health` says are not cooling down.
    pub fn with_health(mut self, health: Health) -> Self {
        self.policy.health = health;
        self
    }

    /// Whether a failure of `kind` leads to another draw (default:
    /// [`ErrorKind::is_fallbackable`]).
    pub fn fallback_on(mut self, kind: ErrorKind, on: bool) -> Self {
        self.policy.set_fallback_on(kind, on);
        self
    }

    /// Calls at most `n` candidates after the first failed one. Default: no bound.
    pub fn max_fallbacks(mut self, n: usize) -> Self {
        self.policy.max_fallbacks = Some(n);
        self
    }

    /// Caps the upstream calls of one call, retries and fallbacks together
    /// (default [`MaxUpstreamCalls::DEFAULT`](crate::MaxUpstreamCalls::DEFAULT),
    /// 4; skips do not count). A request carrying its own
    /// [`MaxUpstreamCalls`](crate::MaxUpstreamCalls) keeps it. At least 1.
    pub fn max_upstream_calls(mut self, n: usize) -> Self {
        self.policy.max_upstream_calls = Some(n);
        self
    }

    /// No cap on upstream calls: only the retry and fallback bounds apply.
    pub fn no_upstream_call_cap(mut self) -> Self {
        self.policy.max_upstream_calls = None;
        self
    }

    /// Mid-stream recovery for every route (default: off): a stream cut or
    /// stalled after its first token is finished on another candidate of
    /// the route, by the rules of
    /// [`FallbackBuilder::recover_streams`](crate::FallbackBuilder::recover_streams).
    pub fn recover_streams(mut self, on: bool) -> Self {
        self.recover_all = on;
        self
    }

    /// Mid-stream recovery for requests naming `id` (an alias or a
    /// candidate); takes precedence over [`recover_streams`](Self::recover_streams).
    ///
    /// ```
    /// use llm_fallback::WeightedBalanceLayer;
    ///
    /// let routes = || {
    ///     WeightedBalanceLayer::builder()
    ///         .route("gpt-4o", [("azure/gpt-4o", 3.0), ("openai/gpt-4o", 1.0)])
    /// };
    /// assert!(routes().recover_streams_for("gpt-4o", true).build().is_ok());
    /// let e = routes().recover_streams_for("gpt-5", true).build().unwrap_err();
    /// assert!(e.to_string().contains("neither a route alias nor a candidate"), "{e}");
    /// ```
    pub fn recover_streams_for(mut self, id: impl Into<String>, on: bool) -> Self {
        self.recover_for.push((id.into(), on));
        self
    }

    /// Declares that `model` continues a partial answer sent as a final
    /// assistant message (see
    /// [`FallbackBuilder::prefill_supported`](crate::FallbackBuilder::prefill_supported)).
    pub fn prefill_supported(mut self, model: impl Into<String>) -> Self {
        let model = model.into();
        if let Err(e) = validate_model_id(&model) {
            self.errors.push(format!("prefill_supported.{model}"), e);
        }
        self.policy.recovery.prefill.insert(model);
        self
    }

    /// Applies a config value.
    pub fn config(mut self, config: &BalanceConfig) -> Self {
        for (alias, candidates) in &config.routes {
            self = self.route(alias.clone(), candidates.pairs());
        }
        for (name, on) in &config.fallback_on {
            match parse_kind(name) {
                Ok(kind) => self = self.fallback_on(kind, *on),
                Err(e) => self.errors.push(format!("fallback_on.{name}"), e),
            }
        }
        if let Some(n) = config.max_fallbacks {
            self = self.max_fallbacks(n);
        }
        if let Some(seed) = config.seed {
            self = self.with_rng(SharedRng::seeded(seed));
        }
        self = self.strategy(config.strategy);
        if let Some(buffer) = config.latency_buffer {
            self = self.latency_buffer(buffer);
        }
        self
    }

    /// The layer, or every problem found.
    pub fn build(self) -> Result<WeightedBalanceLayer, ConfigError> {
        let mut errors = self.errors;
        if self.policy.max_upstream_calls == Some(0) {
            errors.push("max_upstream_calls", "must be at least 1");
        }
        let candidates: HashSet<&str> = self
            .routes
            .iter()
            .flat_map(|(_, c)| c.iter().map(|(m, _)| m.as_str()))
            .collect();
        let mut aliases = HashSet::new();
        let mut routes = Vec::new();
        for (alias, list) in &self.routes {
            let path = format!("routes.{alias}");
            if alias.is_empty() || alias.chars().any(char::is_whitespace) {
                errors.push(
                    &path,
                    format!("alias {alias:?} is empty or contains white space"),
                );
            } else if candidates.contains(alias.as_str()) {
                errors.push(
                    &path,
                    format!("alias {alias:?} is also a candidate of a route"),
                );
            } else if !aliases.insert(alias.as_str()) {
                errors.push(&path, format!("route {alias:?} is defined twice"));
            }
            check_candidates(&path, list, &mut errors);
            routes.push((
                alias.clone(),
                Route {
                    models: list.iter().map(|(m, _)| Arc::from(m.as_str())).collect(),
                    weights: list.iter().map(|(_, w)| *w).collect(),
                    pick: self.ranking.pick(alias),
                },
            ));
        }
        let ranking = self.ranking.build(&routes, &mut errors);
        let mut policy = self.policy;
        policy.recovery.enabled = PerModel::new(self.recover_all);
        for (id, on) in self.recover_for {
            if !aliases.contains(id.as_str()) && !candidates.contains(id.as_str()) {
                errors.push(
                    format!("recover_streams_for.{id}"),
                    format!("{id:?} is neither a route alias nor a candidate"),
                );
            }
            policy.recovery.enabled.set(id, on);
        }
        errors.into_result(WeightedBalanceLayer::from_parts(
            Arc::new(BalanceTable::new(routes, !self.by_alias_only)),
            Arc::new(policy),
            self.rng.unwrap_or_else(SharedRng::from_os),
            ranking,
        ))
    }
}

fn check_candidates(path: &str, list: &[(String, f64)], errors: &mut ConfigError) {
    if list.is_empty() {
        errors.push(path, "the route has no candidate");
        return;
    }
    if list.len() > MAX_CANDIDATES {
        errors.push(
            path,
            format!(
                "{} candidates; a route takes at most {MAX_CANDIDATES}",
                list.len()
            ),
        );
    }
    let mut seen = HashSet::new();
    for (model, weight) in list {
        let at = format!("{path}.{model}");
        if let Err(e) = validate_model_id(model) {
            errors.push(&at, e);
        }
        if !seen.insert(model.as_str()) {
            errors.push(&at, format!("model {model:?} is listed twice"));
        }
        if !weight.is_finite() {
            errors.push(&at, format!("weight {weight} is not a finite number"));
        } else if *weight < 0.0 {
            errors.push(&at, format!("weight {weight} is negative"));
        }
    }
    if list.iter().all(|(_, w)| *w == 0.0) {
        errors.push(path, "every weight is zero; at least one must be positive");
    }
}
