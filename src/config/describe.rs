//! The one-line descriptions of routes, providers and fallback groups that
//! `--check` prints.

use std::collections::BTreeMap;

use super::expand::{Route, ROUTE_PREFIX};
use super::fallback::KindRoute;
use super::providers::CheckedProvider;
use crate::layers::balance::RoutingStrategy;
use crate::layers::fallback::FallbackGroups;
use crate::layers::limit::Limits;

/// `in order: a, b (600 rpm)` or `least busy first, ties weighted: a 75%, b 25%; then in order: c`.
pub(crate) fn summary(route: &Route, limits: &BTreeMap<String, Limits>) -> String {
    match route {
        Route::Ordered(items) => {
            let items: Vec<String> = (items.iter())
                .map(|m| format!("{m}{}", limits_note(m, limits)))
                .collect();
            format!("in order: {}", items.join(", "))
        }
        Route::Weighted {
            weights,
            fallbacks,
            strategy,
            ..
        } => {
            let total: f64 = weights.iter().map(|(_, w)| w).sum();
            let shares: Vec<String> = weights
                .iter()
                .map(|(m, w)| {
                    let share = 100.0 * w / total;
                    format!("{m} {share:.0}%{}", limits_note(m, limits))
                })
                .collect();
            let mut text = match describe_strategy(*strategy) {
                Some(how) => format!("{how}, ties weighted: {}", shares.join(", ")),
                None => format!("weighted: {}", shares.join(", ")),
            };
            if !fallbacks.is_empty() {
                text.push_str(&format!("; then in order: {}", fallbacks.join(", ")));
            }
            text
        }
    }
}

/// ` (600 rpm, 90000 tpm)` for a model with limits, else nothing.
fn limits_note(model: &str, limits: &BTreeMap<String, Limits>) -> String {
    let Some(l) = limits.get(model) else {
        return String::new();
    };
    let parts: Vec<String> = [(l.rpm, "rpm"), (l.tpm, "tpm")]
        .iter()
        .filter_map(|(n, unit)| n.map(|n| format!("{n} {unit}")))
        .collect();
    format!(" ({})", parts.join(", "))
}

/// How a route's strategy reads in `--check`.
fn describe_strategy(strategy: RoutingStrategy) -> Option<&'static str> {
    match strategy {
        RoutingStrategy::Weighted => None,
        RoutingStrategy::LeastBusy => Some("least busy first"),
        RoutingStrategy::LowestUsage => Some("lowest usage first"),
        RoutingStrategy::LowestLatency => Some("lowest latency first"),
    }
}

/// One line for `--check`: the kind, where the key comes from (names and
/// labels, never values), and whether it continues partial answers.
pub(crate) fn describe_provider(plan: &CheckedProvider) -> String {
    let p = &plan.config;
    let mut text = p.kind.to_string();
    if !plan.keys.is_empty() {
        let keys: Vec<String> = (plan.keys.iter())
            .map(|k| format!("{} (tier {}, weight {})", k.label, k.tier, k.weight))
            .collect();
        let s = if keys.len() == 1 { "" } else { "s" };
        text.push_str(&format!(", {} key{s}: {}", keys.len(), keys.join(", ")));
    } else if let Some(var) = &p.api_key_env {
        text.push_str(&format!(", key from {var}"));
    } else {
        text.push_str(", no key");
    }
    if p.prefill() {
        text.push_str(", continues partial answers (prefill)");
    }
    text
}

/// One line per fallback group and kind route:
/// `group: azure/gpt-4o <-> openai/gpt-4o`, `route fast: a -> b`,
/// `context window exceeded: gpt-4o -> openai/gpt-4.1`; `none` without any.
pub(crate) fn fallback_summary(
    groups: &FallbackGroups,
    kind_routes: [&KindRoute; 2],
    max_fallbacks: Option<usize>,
) -> String {
    let mut lines = Vec::new();
    for g in groups.entries() {
        let (what, sep) = if g.route {
            ("route", " -> ")
        } else {
            ("group", " <-> ")
        };
        let name = g.name.as_deref().map_or(String::new(), |n| format!(" {n}"));
        lines.push(format!("{what}{name}: {}", g.models.join(sep)));
    }
    let labels = ["context window exceeded", "content filter"];
    for (label, route) in labels.into_iter().zip(kind_routes) {
        if !route.global.is_empty() {
            lines.push(format!("{label}: any -> {}", route.global.join(", ")));
        }
        for (model, list) in &route.per_model {
            // A weighted route's alias is keyed as the balance layer sees it.
            let model = (model.strip_prefix(ROUTE_PREFIX))
                .and_then(|m| m.strip_prefix('/'))
                .unwrap_or(model);
            lines.push(format!("{label}: {model} -> {}", list.join(", ")));
        }
    }
    if let Some(n) = max_fallbacks {
        lines.push(format!("at most {n} fallbacks per call"));
    }
    if lines.is_empty() {
        lines.push("none".to_owned());
    }
    lines.join("\n") + "\n"
}
