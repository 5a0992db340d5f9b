//! Checking the routes of a config: aliases, ordered and weighted lists,
//! strategies.

use std::collections::{BTreeMap, BTreeSet};

use super::ctx::Ctx;
use super::expand::{Route, ROUTE_PREFIX};
use super::types::{RouteConfig, RouteTable};
use crate::chat::split_model_id;
use crate::layers::balance::{RouteCandidates, RoutingStrategy};
use crate::settings::key_path;

/// The most candidates a weighted route takes (the balance layer's limit).
const MAX_WEIGHTED: usize = 64;

impl Ctx<'_> {
    /// Checks every route and returns them by alias.
    pub(crate) fn check_routes(&mut self) -> BTreeMap<String, Route> {
        let mut routes = BTreeMap::new();
        let config = self.config;
        for (alias, route) in &config.routes {
            let path = format!("routes.{}", key_path(alias));
            self.check_alias(&path, alias);
            let checked = match route {
                RouteConfig::Ordered(models) => {
                    self.check_list(&path, alias, models, false);
                    Route::Ordered(models.clone())
                }
                RouteConfig::Table(table) => self.check_table(&path, alias, table),
            };
            routes.insert(alias.clone(), checked);
        }
        routes
    }

    fn check_alias(&mut self, path: &str, alias: &str) {
        if alias.is_empty() || alias.chars().any(|c| c.is_whitespace() || c.is_control()) {
            self.errors.push(
                path,
                format!("alias {alias:?} is empty or contains white space"),
            );
        } else if let Some((provider, _)) = split_model_id(alias) {
            if self.providers.contains(provider) || provider == ROUTE_PREFIX {
                self.errors.push(
                    path,
                    format!("alias {alias:?} reads as a model id of provider {provider:?}; pick a name without that prefix"),
                );
            }
        }
    }

    fn check_table(&mut self, path: &str, alias: &str, t: &RouteTable) -> Route {
        let fallbacks_path = format!("{path}.fallbacks");
        self.check_list(&fallbacks_path, alias, &t.fallbacks, true);
        let strategy = self.check_strategy(path, t);
        match (&t.models, &t.weights) {
            (Some(_), Some(_)) => {
                self.errors
                    .push(path, "give either `models` or `weights`, not both");
                Route::Ordered(Vec::new())
            }
            (None, None) => {
                self.errors
                    .push(path, "a route table needs `models` (in order) or `weights`");
                Route::Ordered(Vec::new())
            }
            (Some(models), None) => {
                self.check_list(&format!("{path}.models"), alias, models, false);
                Route::Ordered(models.iter().chain(&t.fallbacks).cloned().collect())
            }
            (None, Some(weights)) => Route::Weighted {
                weights: self.check_weights(&format!("{path}.weights"), weights),
                fallbacks: t.fallbacks.clone(),
                strategy,
                latency_buffer: t.latency_buffer,
            },
        }
    }

    /// A table's `strategy` and `latency_buffer`: for weighted routes only.
    fn check_strategy(&mut self, path: &str, t: &RouteTable) -> RoutingStrategy {
        let strategy = t.strategy.unwrap_or_default();
        if t.weights.is_none() {
            for (field, set) in [
                ("strategy", t.strategy.is_some()),
                ("latency_buffer", t.latency_buffer.is_some()),
            ] {
                if set {
                    self.errors.push(
                        format!("{path}.{field}"),
                        "only a route with `weights` picks among its candidates; this one tries them in order",
                    );
                }
            }
            return strategy;
        }
        if let Some(buffer) = t.latency_buffer {
            let at = format!("{path}.latency_buffer");
            if !(buffer.is_finite() && buffer >= 0.0) {
                self.errors.push(
                    &at,
                    format!("{buffer} is not a finite number of at least 0"),
                );
            } else if strategy != RoutingStrategy::LowestLatency {
                self.errors
                    .push(&at, "only used with strategy = \"lowest_latency\"");
            }
        }
        strategy
    }

    fn check_list(&mut self, path: &str, alias: &str, items: &[String], may_be_empty: bool) {
        if items.is_empty() && !may_be_empty {
            self.errors.push(path, "the route has no model");
        }
        let mut seen = BTreeSet::new();
        for (i, item) in items.iter().enumerate() {
            let at = format!("{path}[{i}]");
            if item == alias {
                self.errors
                    .push(&at, format!("route {alias:?} lists itself"));
            } else if !seen.insert(item) {
                self.errors.push(&at, format!("{item:?} is listed twice"));
            } else {
                self.check_target(&at, item);
            }
        }
    }

    fn check_weights(&mut self, path: &str, weights: &RouteCandidates) -> Vec<(String, f64)> {
        let pairs = weights.pairs();
        if pairs.is_empty() {
            self.errors.push(path, "the route has no candidate");
        } else if pairs.len() > MAX_WEIGHTED {
            self.errors.push(
                path,
                format!(
                    "{} candidates; a weighted route takes at most {MAX_WEIGHTED}",
                    pairs.len()
                ),
            );
        }
        let mut seen = BTreeSet::new();
        for (model, weight) in &pairs {
            if self.is_alias(model) {
                self.errors.push(
                    path,
                    format!("weights take model ids; {model:?} is a route alias (list it in `fallbacks`)"),
                );
            } else {
                self.check_model(path, model);
            }
            if !seen.insert(model) {
                self.errors.push(path, format!("{model:?} is listed twice"));
            }
            if !weight.is_finite() {
                self.errors
                    .push(path, format!("weight for {model:?} is not a finite number"));
            } else if *weight < 0.0 {
                self.errors
                    .push(path, format!("weight for {model:?} is negative"));
            }
        }
        if !pairs.is_empty() && pairs.iter().all(|(_, w)| *w == 0.0) {
            self.errors
                .push(path, "every weight is zero; at least one must be positive");
        }
        pairs
    }
}
