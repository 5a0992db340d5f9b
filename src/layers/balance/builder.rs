//! [`BalanceBuilder`]: every setting of a [`WeightedBalanceLayer`] from
//! code, or from a [`BalanceConfig`], checked together by `build`.

use std::collections::HashSet;
use std::sync::Arc;

use super::candidates::{BalanceTable, Route, MAX_CANDIDATES};
use super::config::BalanceConfig;
use super::ranking::RankingSettings;
use super::strategy::RoutingStrategy;
use super::WeightedBalanceLayer;
use crate::chat::{validate_model_id, ConfigError};
use crate::layers::health::Health;
use crate::layers::limit::UsageView;
use crate::layers::route::{check_recovered, RouteOptions};
use crate::rng::SharedRng;

/// Builds a [`WeightedBalanceLayer`]. Every mistake is reported by
/// [`build`](Self::build), together.
///
/// Defaults: no route, another draw on the kinds of
/// [`ErrorKind::is_fallbackable`](crate::ErrorKind::is_fallbackable), no bound on draws, draws seeded by the OS,
/// every model healthy, the weighted strategy for every route, no usage view.
#[derive(Debug, Default)]
pub struct BalanceBuilder {
    routes: Vec<(String, Vec<(String, f64)>)>,
    options: RouteOptions,
    health: Health,
    rng: Option<SharedRng>,
    by_alias_only: bool,
    pub(super) ranking: RankingSettings,
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
    pub fn rng(mut self, rng: SharedRng) -> Self {
        self.rng = Some(rng);
        self
    }

    /// Draws only among candidates that `health` says are not cooling down.
    pub fn health(mut self, health: Health) -> Self {
        self.health = health;
        self
    }

    /// When to draw again, how often, and mid-stream recovery (see
    /// [`RouteOptions`] for the defaults). With recovery on, a stream cut or
    /// stalled after its first token is finished on another candidate of
    /// the route.
    ///
    /// ```
    /// use llm_fallback::{RouteOptions, WeightedBalanceLayer};
    ///
    /// let routes = || {
    ///     WeightedBalanceLayer::builder()
    ///         .route("gpt-4o", [("azure/gpt-4o", 3.0), ("openai/gpt-4o", 1.0)])
    /// };
    /// let recover = |id| RouteOptions::new().recover_streams_for(id, true);
    /// assert!(routes().options(recover("gpt-4o")).build().is_ok());
    /// let e = routes().options(recover("gpt-5")).build().unwrap_err();
    /// assert!(e.to_string().contains("neither a route alias nor a candidate"), "{e}");
    /// ```
    pub fn options(mut self, options: RouteOptions) -> Self {
        self.options = options;
        self
    }

    /// Applies a config value.
    pub fn config(mut self, config: &BalanceConfig) -> Self {
        for (alias, candidates) in &config.routes {
            self = self.route(alias.clone(), candidates.pairs());
        }
        let options = self.options.clone();
        let mut options = options.fallback_on_names(&config.fallback_on, "", &mut self.errors);
        if let Some(n) = config.max_fallbacks {
            options = options.max_fallbacks(n);
        }
        self = self.options(options);
        if let Some(seed) = config.seed {
            self = self.rng(SharedRng::seeded(seed));
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
        let (policy, recovered) = self.options.policy(self.health, &mut errors);
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
        check_recovered(
            &recovered,
            |id| aliases.contains(id) || candidates.contains(id),
            "neither a route alias nor a candidate",
            &mut errors,
        );
        errors.into_result(WeightedBalanceLayer::from_parts(
            Arc::new(BalanceTable::new(routes, !self.by_alias_only)),
            Arc::new(policy),
            self.rng.unwrap_or_else(SharedRng::from_os),
            ranking,
        ))
    }
}

/// The ranking setters: how each route picks among its candidates.
impl BalanceBuilder {
    /// How every route picks among its available candidates (default
    /// [`RoutingStrategy::Weighted`]).
    pub fn strategy(mut self, strategy: RoutingStrategy) -> Self {
        self.ranking.strategy = strategy;
        self
    }

    /// How the route `alias` picks among its available candidates;
    /// overrides [`strategy`](Self::strategy) for that route.
    ///
    /// ```
    /// use llm_fallback::layers::balance::RoutingStrategy;
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
        self.ranking.strategy_for.push((alias.into(), strategy));
        self
    }

    /// For [`RoutingStrategy::LowestLatency`]: candidates whose average
    /// latency is within this share of the fastest's (0.1: 10 % slower at
    /// most) share the load. Default 0.1.
    pub fn latency_buffer(mut self, buffer: f64) -> Self {
        self.ranking.latency_buffer = Some(buffer);
        self
    }

    /// [`latency_buffer`](Self::latency_buffer) for the route `alias` only.
    pub fn latency_buffer_for(mut self, alias: impl Into<String>, buffer: f64) -> Self {
        self.ranking.latency_buffer_for.push((alias.into(), buffer));
        self
    }

    /// Reads the limits and usage of a [`LimitLayer`](crate::layers::limit::LimitLayer)
    /// (its [`usage`](crate::layers::limit::LimitLayer::usage) view): a
    /// candidate whose last known usage fills a limit is not drawn while
    /// others are available, and [`RoutingStrategy::LowestUsage`] ranks by
    /// it. The limit layer, below this one, is what holds the limits.
    pub fn usage(mut self, view: UsageView) -> Self {
        self.ranking.usage = Some(view);
        self
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
