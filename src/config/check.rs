//! Checking the global parts of a config (providers, routes and their
//! aliases, `[fallback]`, `[limits]`, `model_messages`), every
//! problem at once; the layers' own sections are checked by their layers.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::ctx::{Ctx, Env};
use super::describe::{describe_provider, fallback_summary, summary};
use super::expand::{route_id, Expander, Route};
use super::fallback::fallback_builder;
use super::providers::CheckedProvider;
use super::types::Config;
use crate::chat::{ConfigError, ErrorKind, Message, PerModel};
use crate::layers::balance::{BalanceBuilder, RoutingStrategy};
use crate::layers::fallback::FallbackBuilder;
use crate::layers::hedge::LearnedDelay;
use crate::layers::limit::LimitConfig;
use crate::layers::route::RouteOptions;
use crate::settings::{key_path, Scope};

/// The global parts of a config, checked, every alias expanded: the
/// provider clients to build, the routing layers' builders (configured from
/// the routes and `[fallback]`), `[limits]` checked against what the routes
/// serve, what per-model keys may name, and what `--check` and the server
/// list of them.
#[derive(Debug)]
pub(crate) struct Checked {
    pub(crate) clients: Vec<CheckedProvider>,
    /// The stack adds the health view.
    pub(crate) fallback: FallbackBuilder,
    /// The stack adds the health view, the random source, the usage view.
    pub(crate) balance: BalanceBuilder,
    /// `[limits]`, checked (empty when it has problems).
    pub(crate) limits: LimitConfig,
    /// What per-model keys may name: providers, aliases and their models.
    pub(crate) scope: Scope,
    pub(crate) messages: PerModel<Vec<Message>>,
    /// Alias -> the concrete models it may call, in order.
    pub(crate) routes: BTreeMap<String, Vec<String>>,
    /// Alias -> a one-line description, for `--check`.
    pub(crate) summaries: BTreeMap<String, String>,
    /// Provider -> a one-line description, for `--check`.
    pub(crate) provider_summaries: BTreeMap<String, String>,
    /// Every alias and model id served.
    pub(crate) models: Vec<String>,
    /// The fallback groups and kind routes, one a line, for `--check`.
    pub(crate) groups_summary: String,
    /// The hedge's learned delays, if it learns.
    pub(crate) learned: Option<Arc<LearnedDelay>>,
}

/// Checks `config`; `supplied` names providers given as services in code;
/// the hedge learns into `learned` (an earlier stack's) if its settings
/// are the same.
pub(crate) fn check(
    config: &Config,
    env: Env<'_>,
    supplied: &BTreeSet<String>,
    learned: Option<&Arc<LearnedDelay>>,
) -> (Checked, ConfigError) {
    let mut ctx = Ctx::new(config, env, supplied);
    let clients = ctx.check_providers();
    let routes = ctx.check_routes();
    let expander = Expander { routes: &routes };

    let mut fallback_routes = Vec::new();
    let mut concrete = BTreeMap::new();
    let mut reported = BTreeSet::new();
    for alias in routes.keys() {
        match expander.fallback_list(alias) {
            Ok(list) => {
                concrete.insert(alias.clone(), expander.concrete(&list));
                fallback_routes.push((alias.clone(), list));
            }
            Err(cycle) => {
                let members: BTreeSet<String> = cycle.iter().cloned().collect();
                // A route listing itself is reported where it is listed.
                if members.len() > 1 && reported.insert(members) {
                    ctx.errors.push(
                        format!("routes.{}", key_path(alias)),
                        format!("the routes form a cycle: {}", cycle.join(" -> ")),
                    );
                }
            }
        }
    }
    for (alias, models) in &concrete {
        ctx.scope = ctx
            .scope
            .clone()
            .route(alias.clone(), models.iter().cloned());
    }
    let weighted: Vec<(String, Vec<(String, f64)>)> = routes
        .iter()
        .filter_map(|(alias, route)| match route {
            Route::Weighted { weights, .. } => Some((route_id(alias), weights.clone())),
            Route::Ordered(_) => None,
        })
        .collect();
    let weighted_aliases: BTreeSet<&str> = (routes.iter())
        .filter(|(_, route)| matches!(route, Route::Weighted { .. }))
        .map(|(alias, _)| alias.as_str())
        .collect();

    let groups = ctx.check_groups();
    let recover = ctx.recovery(&groups, &weighted_aliases);
    let fb = &config.fallback;
    let context_window = ctx.kind_route(
        "fallback.context_window_fallbacks",
        &fb.context_window_fallbacks,
        &expander,
    );
    let content_filter = ctx.kind_route(
        "fallback.content_filter_fallbacks",
        &fb.content_filter_fallbacks,
        &expander,
    );
    let mut options = fb.route_options(RouteOptions::new(), "fallback.", &mut ctx.errors);
    let mut kept_learned = None;
    if let Some(mut hedge) = fb.hedge(&ctx.scope, &mut ctx.errors) {
        if let Some(learned) = learned {
            hedge = hedge.keep_learned(learned);
        }
        kept_learned = hedge.learned_delay().cloned();
        options = options.hedge(hedge);
    }
    for (i, model) in config.models.iter().enumerate() {
        ctx.check_model(&format!("models[{i}]"), model);
    }
    let messages = ctx.messages();

    let mut listed: BTreeSet<String> = config.models.iter().cloned().collect();
    listed.extend(concrete.values().flatten().cloned());
    listed.extend(
        groups
            .entries()
            .iter()
            .flat_map(|g| g.models.iter().cloned()),
    );
    for list in [&context_window, &content_filter] {
        listed.extend(expander.concrete(&list.global));
        for l in list.per_model.values() {
            listed.extend(expander.concrete(l));
        }
    }
    let limits = ctx.usage_limits(&listed);
    let named = groups.entries().iter().filter_map(|g| g.name.clone());
    let models: Vec<String> = routes.keys().cloned().chain(named).chain(listed).collect();
    for id in ctx.prefill(&models, &weighted) {
        options = options.prefill_supported(id);
    }
    let summaries = routes
        .iter()
        .map(|(alias, route)| {
            let mut text = summary(route, &limits);
            if recover.for_alias(alias) {
                text.push_str("; a cut stream is finished by the next candidate");
            }
            (alias.clone(), text)
        })
        .collect();
    let provider_summaries = (clients.iter())
        .map(|c| (c.name.clone(), describe_provider(c)))
        .collect();

    let groups_summary = fallback_summary(
        &groups,
        [&context_window, &content_filter],
        fb.max_fallbacks,
    );
    let mut fallback_options = options.clone();
    for (id, on) in &recover.fallback {
        fallback_options = fallback_options.recover_streams_for(id.clone(), *on);
    }
    let kind_routes = [
        (ErrorKind::ContextWindowExceeded, &context_window),
        (ErrorKind::ContentFilter, &content_filter),
    ];
    let fallback = fallback_builder(&fallback_routes, groups, kind_routes, fallback_options);
    for (id, on) in &recover.balance {
        options = options.recover_streams_for(id.clone(), *on);
    }
    let balance = balance_builder(&routes, options);
    let checked = Checked {
        clients,
        fallback,
        balance,
        limits,
        scope: ctx.scope.clone(),
        messages,
        routes: concrete,
        summaries,
        provider_summaries,
        models,
        groups_summary,
        learned: kept_learned,
    };
    (checked, ctx.errors)
}

/// The balance layer's builder: the weighted routes (as `_route/<alias>`,
/// the id the fallback layer calls them by) with their strategies, and
/// `options`.
fn balance_builder(routes: &BTreeMap<String, Route>, options: RouteOptions) -> BalanceBuilder {
    // Routes are one-way: a weighted route's model requested by its id (by a
    // client, or by the fallback layer for another route) is just that model
    // (held to its limits by the limit layer below).
    let mut b = BalanceBuilder::default().by_alias_only().options(options);
    for (alias, route) in routes {
        let Route::Weighted {
            weights,
            strategy,
            latency_buffer,
            ..
        } = route
        else {
            continue;
        };
        let id = route_id(alias);
        b = b.route(id.clone(), weights.iter().cloned());
        if *strategy != RoutingStrategy::Weighted {
            b = b.strategy_for(id.clone(), *strategy);
            if let Some(buffer) = latency_buffer {
                b = b.latency_buffer_for(id, *buffer);
            }
        }
    }
    b
}
