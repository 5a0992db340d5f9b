//! The upstream-call budget a translated config needs: LiteLLM bounds a
//! call by its retries and fallbacks only, while the native routing layers
//! also cap upstream calls (4 by default), which `num_retries: 3` alone
//! would use up before any fallback.

use crate::config::{Config, RouteConfig};
use crate::layers::balance::RouteCandidates;

/// The most upstream calls the budget is raised to.
const MAX_BUDGET: usize = 64;

/// LiteLLM's default `max_fallbacks`.
const LITELLM_MAX_FALLBACKS: usize = 5;

/// Raises `fallback.max_upstream_calls` (unless set) to what the longest
/// route may call: each candidate with its retries, the fallbacks' own
/// candidates included, up to `max_fallbacks` of them.
pub(crate) fn raise_upstream_budget(config: &mut Config) {
    if config.fallback.max_upstream_calls.is_some() {
        return;
    }
    let retries = config.retry.max_retries.models.values().copied();
    let retries = retries
        .chain([config.retry.max_retries.default.unwrap_or(2)])
        .max()
        .unwrap_or(2) as usize;
    let max_fallbacks = config
        .fallback
        .max_fallbacks
        .unwrap_or(LITELLM_MAX_FALLBACKS);
    let longest = (config.routes.values())
        .map(|route| {
            let (direct, fallbacks) = candidates(route);
            let extra: usize = (fallbacks.iter().take(max_fallbacks))
                .map(|f| config.routes.get(f).map_or(1, |r| candidates(r).0))
                .sum();
            direct + extra
        })
        .max()
        .unwrap_or(1);
    let budget = retries
        .saturating_add(1)
        .saturating_mul(longest)
        .min(MAX_BUDGET);
    if budget > 4 {
        config.fallback.max_upstream_calls = Some(budget);
    }
}

/// A route's own candidates, and its fallbacks.
fn candidates(route: &RouteConfig) -> (usize, &[String]) {
    match route {
        RouteConfig::Ordered(models) => (models.len(), &[]),
        RouteConfig::Table(t) => {
            let direct = match (&t.models, &t.weights) {
                (Some(models), _) => models.len(),
                (None, Some(RouteCandidates::Map(m))) => m.len(),
                (None, Some(RouteCandidates::List(l))) => l.len(),
                (None, None) => 0,
            };
            (direct, &t.fallbacks)
        }
    }
}
