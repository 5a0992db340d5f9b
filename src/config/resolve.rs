//! Checking a whole config and resolving it into what the stack is built from.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::describe::summary;
use super::expand::{dedup, route_id, Expander};
use super::recovery::{describe_provider, RecoverPlan};
use super::routes::{ClientPlan, Route};
use super::sections::GroupsSetting;
use super::settings::{CooldownPlan, RetryPlan, ServerPlan};
use super::store::StorePlan;
use super::types::Config;
use super::values::PerModelSetting;
use crate::chat::{validate_provider_name, ConfigError, ErrorKind, Message, PerModel};
use crate::layers::balance::RoutingStrategy;
use crate::layers::fallback::FallbackGroups;
use crate::layers::limit::LimitConfig;
use crate::layers::route::parse_kind;
use crate::layers::timeout::StreamDeadlines;

/// Looks up an environment variable.
pub(crate) type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// What checking needs, and the problems found so far.
pub(crate) struct Ctx<'a> {
    pub(crate) config: &'a Config,
    pub(crate) env: Env<'a>,
    /// Providers supplied as services in code: no client, no key needed.
    pub(crate) supplied: BTreeSet<String>,
    /// Every provider name model ids may use.
    pub(crate) providers: BTreeSet<String>,
    pub(crate) errors: ConfigError,
}

/// A config, checked, with every alias expanded.
#[derive(Debug)]
pub(crate) struct Resolved {
    pub(crate) clients: Vec<ClientPlan>,
    /// One-way fallback routes: alias -> fallback-layer ids.
    pub(crate) fallback_routes: Vec<(String, Vec<String>)>,
    /// Balance routes: `_route/<alias>` -> weighted models.
    pub(crate) weighted: Vec<(String, Vec<(String, f64)>)>,
    /// Balance routes that pick by a strategy: `_route/<alias>` -> it and
    /// its latency buffer.
    pub(crate) strategies: Vec<(String, RoutingStrategy, Option<f64>)>,
    /// Model id -> its limits, checked.
    pub(crate) limits: LimitConfig,
    /// Where breakers and usage counts live.
    pub(crate) store: StorePlan,
    pub(crate) groups: FallbackGroups,
    pub(crate) context_window: KindRoute,
    pub(crate) content_filter: KindRoute,
    pub(crate) fallback_on: Vec<(ErrorKind, bool)>,
    pub(crate) max_fallbacks: Option<usize>,
    pub(crate) max_upstream_calls: Option<usize>,
    pub(crate) total: Option<Duration>,
    /// `None` when no model has an attempt deadline.
    pub(crate) attempt: Option<PerModel<Option<Duration>>>,
    /// The attempt deadlines of complete (non-streaming) answers.
    pub(crate) complete: PerModel<Option<Duration>>,
    /// The deadlines of streamed answers, per model.
    pub(crate) streams: PerModel<StreamDeadlines>,
    /// Mid-stream recovery.
    pub(crate) recover: RecoverPlan,
    /// The ids the routing layers call that continue a partial answer.
    pub(crate) prefill: Vec<String>,
    pub(crate) retry: RetryPlan,
    pub(crate) cooldown: Option<CooldownPlan>,
    pub(crate) messages: PerModel<Vec<Message>>,
    pub(crate) seed: Option<u64>,
    pub(crate) server: ServerPlan,
    /// Alias -> the concrete models it may call, in order.
    pub(crate) routes: BTreeMap<String, Vec<String>>,
    /// Alias -> a one-line description, for `--check`.
    pub(crate) summaries: BTreeMap<String, String>,
    /// Provider -> a one-line description, for `--check`.
    pub(crate) provider_summaries: BTreeMap<String, String>,
    /// Every alias and model id served.
    pub(crate) models: Vec<String>,
}

/// A route dedicated to an error kind: for every model, and per model.
#[derive(Debug, Default)]
pub(crate) struct KindRoute {
    pub(crate) global: Vec<String>,
    pub(crate) per_model: BTreeMap<String, Vec<String>>,
}

pub(crate) use crate::chat::key_path;

/// Checks `config`; `supplied` names providers given as services in code.
pub(crate) fn resolve(
    config: &Config,
    env: Env<'_>,
    supplied: &BTreeSet<String>,
) -> (Resolved, ConfigError) {
    // Invalid names are reported once, not listed as configured.
    let providers = config
        .providers
        .keys()
        .chain(supplied)
        .filter(|name| validate_provider_name(name).is_ok() && !name.starts_with('_'))
        .cloned()
        .collect();
    let mut ctx = Ctx {
        config,
        env,
        supplied: supplied.clone(),
        providers,
        errors: ConfigError::default(),
    };
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
    let weighted: Vec<(String, Vec<(String, f64)>)> = routes
        .iter()
        .filter_map(|(alias, route)| match route {
            Route::Weighted { weights, .. } => Some((route_id(alias), weights.clone())),
            Route::Ordered(_) => None,
        })
        .collect();
    let strategies = (routes.iter())
        .filter_map(|(alias, route)| match route {
            Route::Weighted {
                strategy,
                latency_buffer,
                ..
            } if *strategy != RoutingStrategy::Weighted => {
                Some((route_id(alias), *strategy, *latency_buffer))
            }
            _ => None,
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
    let mut fallback_on = Vec::new();
    for (name, on) in &fb.fallback_on {
        match parse_kind(name) {
            Ok(kind) => fallback_on.push((kind, *on)),
            Err(e) => ctx
                .errors
                .push(format!("fallback.fallback_on.{}", key_path(name)), e),
        }
    }
    for (i, model) in config.models.iter().enumerate() {
        ctx.check_model(&format!("models[{i}]"), model);
    }

    if config.fallback.max_upstream_calls == Some(0) {
        ctx.errors
            .push("fallback.max_upstream_calls", "must be at least 1");
    }
    let super::settings::Timeouts {
        total,
        attempt,
        complete,
    } = ctx.timeouts(&concrete);
    let streams = ctx.stream_deadlines(&concrete);
    let retry = ctx.retry(&concrete);
    let cooldown = ctx.cooldown(&concrete);
    let messages = ctx.messages(&concrete);
    let server = ctx.server();
    let store = ctx.store();

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
    let prefill = ctx.prefill(&models, &weighted);
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

    let resolved = Resolved {
        clients,
        fallback_routes,
        weighted,
        strategies,
        limits,
        store,
        groups,
        context_window,
        content_filter,
        fallback_on,
        max_fallbacks: fb.max_fallbacks,
        max_upstream_calls: fb.max_upstream_calls.filter(|n| *n > 0),
        total,
        attempt,
        complete,
        streams,
        recover,
        prefill,
        retry,
        cooldown,
        messages,
        seed: config.seed,
        server,
        routes: concrete,
        summaries,
        provider_summaries,
        models,
    };
    (resolved, ctx.errors)
}

impl Ctx<'_> {
    fn check_groups(&mut self) -> FallbackGroups {
        let config = self.config;
        let fb = &config.fallback;
        let mut groups = match &fb.groups {
            GroupsSetting::Lists(lists) => {
                let mut groups = FallbackGroups::new();
                for (i, list) in lists.iter().enumerate() {
                    let path = format!("fallback.groups[{i}]");
                    for model in list {
                        self.check_model(&path, model);
                    }
                    if list.iter().collect::<BTreeSet<_>>().len() < 2 {
                        self.errors
                            .push(&path, "a fallback group needs at least two distinct models");
                    }
                    groups = groups.group(list.iter().cloned());
                }
                groups
            }
            GroupsSetting::Spec(spec) => self.parsed_groups("fallback.groups", spec),
        };
        if fb.groups_from_env {
            if let Some(spec) = (self.env)(FallbackGroups::ENV_VAR) {
                groups.extend(self.parsed_groups(FallbackGroups::ENV_VAR, &spec));
            }
        }
        for g in groups.entries() {
            if let Some(name) = g.name.as_deref().filter(|n| self.is_alias(n)) {
                self.errors.push(
                    "fallback.groups",
                    format!("group name {name:?} is also a route alias"),
                );
            }
        }
        groups
    }

    fn parsed_groups(&mut self, path: &str, spec: &str) -> FallbackGroups {
        match FallbackGroups::parse(spec) {
            Ok(groups) => {
                for g in groups.entries() {
                    for model in &g.models {
                        self.check_model(path, model);
                    }
                }
                groups
            }
            Err(e) => {
                for p in e.problems() {
                    self.errors.push(path, &p.message);
                }
                FallbackGroups::new()
            }
        }
    }

    /// A kind's dedicated route: keys and items may be aliases.
    fn kind_route(
        &mut self,
        path: &str,
        setting: &PerModelSetting<Vec<String>>,
        expander: &Expander<'_>,
    ) -> KindRoute {
        let expand = |ctx: &mut Self, at: &str, items: &[String]| -> Vec<String> {
            let mut out = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let item_path = format!("{at}[{i}]");
                ctx.check_target(&item_path, item);
                match expander.item(item) {
                    Ok(ids) => out.extend(ids),
                    Err(cycle) => ctx
                        .errors
                        .push(item_path, format!("cycle: {}", cycle.join(" -> "))),
                }
            }
            dedup(out)
        };
        let mut route = KindRoute::default();
        if let Some(items) = &setting.default {
            route.global = expand(self, path, items);
        }
        for (key, items) in &setting.models {
            let at = format!("{path}.models.{}", key_path(key));
            let list = expand(self, &at, items);
            // What the fallback layer calls for this key.
            let keys = if self.is_alias(key) {
                expander.item(key).unwrap_or_default()
            } else if self.check_model(&at, key) {
                vec![key.clone()]
            } else {
                Vec::new()
            };
            for k in keys {
                route.per_model.insert(k, list.clone());
            }
        }
        route
    }

    /// A per-model setting with route aliases among its keys expanded: a
    /// model's own entry wins over an alias's.
    pub(crate) fn per_model<T: Clone>(
        &mut self,
        path: &str,
        setting: &PerModelSetting<T>,
        builtin: T,
        routes: &BTreeMap<String, Vec<String>>,
    ) -> PerModel<T> {
        let mut per = PerModel::new(setting.default.clone().unwrap_or(builtin));
        let mut own = BTreeSet::new();
        for (key, value) in &setting.models {
            if !self.is_alias(key)
                && self.check_model(&format!("{path}.models.{}", key_path(key)), key)
            {
                per.set(key.clone(), value.clone());
                own.insert(key.clone());
            }
        }
        for (key, value) in setting.models.iter().filter(|(k, _)| self.is_alias(k)) {
            for model in routes.get(key).into_iter().flatten() {
                if !own.contains(model) {
                    per.set(model.clone(), value.clone());
                }
            }
        }
        per
    }
}
