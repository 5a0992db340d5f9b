//! Model groups into routes: the deployments of the lowest `order` balanced
//! (by `weight`, else `rpm`, else `tpm`, as LiteLLM's simple-shuffle draws),
//! later orders after them, then the group's fallbacks; and the fallbacks
//! of error kinds into `[fallback]`.

use std::collections::BTreeMap;

use super::deployments::Group;
use super::model::Deployment;
use super::read::Reader;
use super::settings::{FallbackRule, Settings};
use crate::config::{Config, RouteConfig, RouteTable};
use crate::layers::balance::{RouteCandidates, RoutingStrategy};

/// Adds a route per group, and the kinds' fallbacks, to `config`.
pub(crate) fn add_routes(
    r: &mut Reader<'_>,
    groups: &BTreeMap<String, Group>,
    s: &Settings,
    config: &mut Config,
) {
    let strategy = strategy(r, s);
    let (mut by_group, mut default) = targets(r, groups, &s.fallbacks);
    if let Some((path, list)) = &s.default_fallbacks {
        default = known(r, groups, path, list);
    }
    for (name, group) in groups {
        let own = by_group.remove(name);
        let fallbacks: Vec<String> = own
            .unwrap_or_else(|| default.clone())
            .into_iter()
            .filter(|g| g != name)
            .collect();
        config
            .routes
            .insert(name.clone(), route(group, fallbacks, strategy, s));
    }
    for (path, alias, group) in &s.aliases {
        if groups.contains_key(alias) || !groups.contains_key(group) {
            r.warnings.push(
                path,
                "an alias must be a new name for a model group of model_list; ignored",
            );
        } else {
            config
                .routes
                .insert(alias.clone(), RouteConfig::Ordered(vec![group.clone()]));
        }
    }
    for (rules, setting) in [
        (
            &s.context_window,
            &mut config.fallback.context_window_fallbacks,
        ),
        (
            &s.content_policy,
            &mut config.fallback.content_filter_fallbacks,
        ),
    ] {
        let (by_group, default) = targets(r, groups, rules);
        if !default.is_empty() {
            setting.default = Some(default);
        }
        setting.models.extend(by_group);
    }
}

/// The route of one group.
fn route(
    group: &Group,
    fallbacks: Vec<String>,
    strategy: RoutingStrategy,
    s: &Settings,
) -> RouteConfig {
    // LiteLLM calls the lowest `order` first; deployments without one last.
    let mut members: Vec<&(Deployment, String)> = group.members.iter().collect();
    members.sort_by_key(|(d, _)| d.order.unwrap_or(u64::MAX));
    let first_order = members.first().and_then(|(d, _)| d.order);
    let (first, later): (Vec<_>, Vec<_>) = members
        .into_iter()
        .partition(|(d, _)| d.order == first_order);
    let later = later.into_iter().map(|(_, id)| id.clone());
    if first.len() == 1 {
        let models: Vec<String> = first
            .iter()
            .map(|(_, id)| id.clone())
            .chain(later)
            .collect();
        return match fallbacks.is_empty() {
            true => RouteConfig::Ordered(models),
            false => RouteConfig::Table(RouteTable {
                models: Some(models),
                fallbacks,
                ..RouteTable::default()
            }),
        };
    }
    let weights = draw_weights(&first);
    RouteConfig::Table(RouteTable {
        weights: Some(RouteCandidates::Map(weights)),
        fallbacks: later.chain(fallbacks).collect(),
        strategy: (strategy != RoutingStrategy::Weighted).then_some(strategy),
        latency_buffer: s
            .latency_buffer
            .filter(|_| strategy == RoutingStrategy::LowestLatency),
        ..RouteTable::default()
    })
}

/// simple-shuffle's weights: `weight` if any deployment sets one (0 for
/// the others), else `rpm`, else `tpm`, else equal.
fn draw_weights(members: &[&(Deployment, String)]) -> BTreeMap<String, f64> {
    let pick: [fn(&Deployment) -> Option<f64>; 3] = [
        |d| d.weight,
        |d| d.rpm.map(|n| n as f64),
        |d| d.tpm.map(|n| n as f64),
    ];
    for field in pick {
        let weights: BTreeMap<String, f64> = (members.iter())
            .map(|(d, id)| (id.clone(), field(d).unwrap_or(0.0)))
            .collect();
        if weights.values().any(|w| *w > 0.0) {
            return weights;
        }
    }
    members.iter().map(|(_, id)| (id.clone(), 1.0)).collect()
}

/// `routing_strategy` as the nearest native strategy.
fn strategy(r: &mut Reader<'_>, s: &Settings) -> RoutingStrategy {
    let Some((path, name)) = &s.strategy else {
        return RoutingStrategy::Weighted;
    };
    match name.as_str() {
        "simple-shuffle" => RoutingStrategy::Weighted,
        "least-busy" => RoutingStrategy::LeastBusy,
        "usage-based-routing" | "usage-based-routing-v2" => RoutingStrategy::LowestUsage,
        "latency-based-routing" => RoutingStrategy::LowestLatency,
        other => {
            r.warnings.push(
                path,
                format!(
                    "{:?} has no native strategy; weighted draws (simple-shuffle) instead",
                    other.escape_debug().to_string()
                ),
            );
            RoutingStrategy::Weighted
        }
    }
}

/// The targets of `rules` by group (a `"*"` rule is every group's), those
/// naming no group warned about and left out.
fn targets(
    r: &mut Reader<'_>,
    groups: &BTreeMap<String, Group>,
    rules: &[FallbackRule],
) -> (BTreeMap<String, Vec<String>>, Vec<String>) {
    let mut by_group = BTreeMap::new();
    let mut default = Vec::new();
    for rule in rules {
        let to = known(r, groups, &rule.path, &rule.to);
        if rule.from == "*" {
            default = to;
        } else if groups.contains_key(&rule.from) {
            by_group.insert(rule.from.clone(), to);
        } else {
            r.warnings.push(
                &rule.path,
                "names no model group of model_list (or only left-out deployments); ignored",
            );
        }
    }
    (by_group, default)
}

/// The items of `list` that are groups; the others warned about.
fn known(
    r: &mut Reader<'_>,
    groups: &BTreeMap<String, Group>,
    path: &str,
    list: &[String],
) -> Vec<String> {
    let mut out = Vec::new();
    for (i, name) in list.iter().enumerate() {
        if groups.contains_key(name) {
            out.push(name.clone());
        } else {
            r.warnings.push(
                format!("{path}[{i}]"),
                "names no model group of model_list (or only left-out deployments); ignored",
            );
        }
    }
    out
}
