//! The one-line descriptions of routes that `--check` prints.

use std::collections::BTreeMap;

use super::routes::Route;
use crate::layers::balance::RoutingStrategy;
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
