//! The ranking part of a [`BalanceBuilder`](super::BalanceBuilder): strategies, and the usage view they read.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use super::candidates::Route;
use super::load::Load;
use super::strategy::{Pick, Ranking, RoutingStrategy};
use crate::chat::ConfigError;
use crate::layers::limit::UsageView;

/// The builder's ranking settings.
#[derive(Default)]
pub(super) struct RankingSettings {
    pub(super) strategy: RoutingStrategy,
    pub(super) latency_buffer: Option<f64>,
    pub(super) strategy_for: Vec<(String, RoutingStrategy)>,
    pub(super) latency_buffer_for: Vec<(String, f64)>,
    pub(super) usage: Option<UsageView>,
}

/// Candidates within 10 % of the fastest share the load.
const DEFAULT_LATENCY_BUFFER: f64 = 0.1;

impl RankingSettings {
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

    /// What ranking reads over `routes`, and the load to measure, if any is
    /// needed; problems go to `errors`.
    pub(super) fn build(
        self,
        routes: &[(String, Route)],
        errors: &mut ConfigError,
    ) -> (Option<Arc<Ranking>>, Option<Arc<Load>>) {
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
        // Every candidate, when a route ranks by what this layer measures.
        let measured = routes.iter().any(|(_, r)| r.pick.strategy.measures_load());
        let load = measured.then(|| {
            let models = routes.iter().flat_map(|(_, r)| r.models.iter().cloned());
            Arc::new(Load::new(models))
        });
        if load.is_none() && self.usage.is_none() {
            return (None, None);
        }
        let ranking = Ranking {
            load: load.clone(),
            usage: self.usage,
        };
        (Some(Arc::new(ranking)), load)
    }
}

impl fmt::Debug for RankingSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RankingSettings")
            .field("strategy", &self.strategy)
            .field("latency_buffer", &self.latency_buffer)
            .field("strategy_for", &self.strategy_for)
            .field("latency_buffer_for", &self.latency_buffer_for)
            .field("usage", &self.usage)
            .finish()
    }
}
