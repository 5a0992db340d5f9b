//! Checking `[fallback]` against the routes, and the fallback layer's
//! builder it configures (the stack adds the health view).

use std::collections::{BTreeMap, BTreeSet};

use super::ctx::Ctx;
use super::expand::{dedup, Expander};
use crate::chat::ErrorKind;
use crate::layers::fallback::{FallbackBuilder, FallbackGroups, GroupsSetting};
use crate::layers::route::RouteOptions;
use crate::settings::{key_path, PerModelSetting};

/// A route dedicated to an error kind: for every model, and per model.
#[derive(Debug, Default)]
pub(crate) struct KindRoute {
    pub(crate) global: Vec<String>,
    pub(crate) per_model: BTreeMap<String, Vec<String>>,
}

/// The fallback layer's builder: one-way `routes` (alias -> fallback-layer
/// ids), `groups`, the routes dedicated to error kinds, and `options`.
pub(crate) fn fallback_builder(
    routes: &[(String, Vec<String>)],
    groups: FallbackGroups,
    kind_routes: [(ErrorKind, &KindRoute); 2],
    options: RouteOptions,
) -> FallbackBuilder {
    let mut b = FallbackBuilder::default().groups(groups);
    for (alias, list) in routes {
        b = b.route(alias.clone(), list.iter().cloned());
    }
    for (kind, route) in kind_routes {
        if !route.global.is_empty() {
            b = b.route_on(kind, route.global.iter().cloned());
        }
        for (model, list) in &route.per_model {
            b = b.route_on_for(model.clone(), kind, list.iter().cloned());
        }
    }
    b.options(options)
}

impl Ctx<'_> {
    pub(crate) fn check_groups(&mut self) -> FallbackGroups {
        let config = self.config;
        let fb = &config.fallback;
        let mut groups = match &fb.groups {
            GroupsSetting::Lists(lists) => {
                let mut groups = FallbackGroups::new();
                for (i, list) in lists.iter().enumerate() {
                    let path = format!("fallback.groups[{i}]");
                    for model in list {
                        if self.is_alias(model) {
                            self.errors.push(
                                &path,
                                format!(
                                    "{model:?} is a route alias; groups list model ids \
                                     (to fall back from a route, give it fallbacks = [...], \
                                     or request a route that lists it first)"
                                ),
                            );
                        } else {
                            self.check_model(&path, model);
                        }
                    }
                    if list.iter().collect::<BTreeSet<_>>().len() < 2 {
                        self.errors
                            .push(&path, "a fallback group needs at least two distinct models");
                    }
                    // A group naming an alias is reported above, once.
                    if !list.iter().any(|m| self.is_alias(m)) {
                        groups = groups.group(list.iter().cloned());
                    }
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
    pub(crate) fn kind_route(
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
}
