//! Building a [`ProviderFallbackLayer`] from code: groups, the routes
//! dedicated to error kinds, [`RouteOptions`], health.

use std::sync::Arc;

use super::candidates::{dedup, KindRoutes, List, Table};
use super::groups::FallbackGroups;
use super::ProviderFallbackLayer;
use crate::chat::{validate_model_id, ConfigError, ErrorKind};
use crate::layers::health::Health;
use crate::layers::route::{check_recovered, RouteOptions};

/// Builds a [`ProviderFallbackLayer`]. Every mistake is reported by
/// [`build`](Self::build), together.
///
/// Defaults: no group, fallback on the kinds of
/// [`ErrorKind::is_fallbackable`], no dedicated route (so a
/// `ContextWindowExceeded` or a `ContentFilter` failure reaches the caller),
/// no bound on fallbacks, every model healthy.
#[derive(Debug, Default)]
pub struct FallbackBuilder {
    groups: FallbackGroups,
    routes: Vec<(Option<String>, ErrorKind, Vec<String>)>,
    pub(super) options: RouteOptions,
    health: Health,
    pub(super) errors: ConfigError,
}

impl FallbackBuilder {
    /// Adds a group of equivalent models, in priority order.
    pub fn group<I>(mut self, models: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.groups = self.groups.group(models);
        self
    }

    /// Adds a group that requests can name by `name`.
    pub fn named_group<I>(mut self, name: impl Into<String>, models: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.groups = self.groups.named(name, models);
        self
    }

    /// Adds a one-way route: a request for `name` tries `models` in order
    /// (see [`FallbackGroups::route`]).
    pub fn route<I>(mut self, name: impl Into<String>, models: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.groups = self.groups.route(name, models);
        self
    }

    /// Adds every group of `groups`.
    pub fn groups(mut self, groups: FallbackGroups) -> Self {
        self.groups.extend(groups);
        self
    }

    /// Adds the groups of `MODEL_FALLBACK_GROUPS` (none when it is unset);
    /// a malformed value is reported by [`build`](Self::build).
    pub fn groups_from_env(mut self) -> Self {
        match FallbackGroups::from_env() {
            Ok(groups) => self.groups.extend(groups),
            Err(e) => self.errors.extend(e),
        }
        self
    }

    /// On `ContextWindowExceeded` from any model, go on with `models` (in order).
    pub fn on_context_window_exceeded<I>(self, models: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.route_on(ErrorKind::ContextWindowExceeded, models)
    }

    /// On `ContextWindowExceeded` from `model`, go on with `models`.
    pub fn on_context_window_exceeded_for<I>(self, model: impl Into<String>, models: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.route_on_for(model, ErrorKind::ContextWindowExceeded, models)
    }

    /// On `ContentFilter` from any model, go on with `models` (default: the
    /// caller gets the provider's reason).
    pub fn on_content_filter<I>(self, models: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.route_on(ErrorKind::ContentFilter, models)
    }

    /// On `ContentFilter` from `model`, go on with `models`.
    pub fn on_content_filter_for<I>(self, model: impl Into<String>, models: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.route_on_for(model, ErrorKind::ContentFilter, models)
    }

    /// On a failure of `kind` from any model, go on with `models` instead of
    /// the rest of the group.
    pub fn route_on<I>(mut self, kind: ErrorKind, models: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        let models = models.into_iter().map(Into::into).collect();
        self.routes.push((None, kind, models));
        self
    }

    /// On a failure of `kind` from `model`, go on with `models`; this takes
    /// precedence over a route set with [`route_on`](Self::route_on).
    pub fn route_on_for<I>(mut self, model: impl Into<String>, kind: ErrorKind, models: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        let models = models.into_iter().map(Into::into).collect();
        self.routes.push((Some(model.into()), kind, models));
        self
    }

    /// When to move on, how far, and mid-stream recovery (see
    /// [`RouteOptions`] for the defaults).
    pub fn options(mut self, options: RouteOptions) -> Self {
        self.options = options;
        self
    }

    /// Skips candidates that `health` says are cooling down (default: all healthy).
    pub fn health(mut self, health: Health) -> Self {
        self.health = health;
        self
    }

    /// The layer, or every problem found.
    pub fn build(self) -> Result<ProviderFallbackLayer, ConfigError> {
        let mut errors = self.errors;
        let (policy, recovered) = self.options.policy(self.health, &mut errors);
        let entries = self.groups.entries();
        self.groups.check(|i, message| {
            let path = match &entries[i].name {
                Some(name) if entries[i].route => format!("routes.{name}"),
                Some(name) => format!("named_groups.{name}"),
                None => {
                    let n = entries[..i].iter().filter(|g| g.name.is_none()).count();
                    format!("groups[{n}]")
                }
            };
            errors.push(path, message);
        });
        let mut routes = KindRoutes::default();
        for (model, kind, models) in self.routes {
            let path = route_path(model.as_deref(), kind);
            if let Some(model) = &model {
                if let Err(e) = validate_model_id(model) {
                    errors.push(path.clone(), e);
                }
            }
            for m in &models {
                if let Err(e) = validate_model_id(m) {
                    errors.push(path.clone(), e);
                }
            }
            let list: List = dedup(models.iter().map(|m| Arc::from(m.as_str()))).into();
            let slot = match model {
                Some(model) => routes.per_model.entry(model).or_default(),
                None => &mut routes.global,
            };
            slot.retain(|(k, _)| *k != kind);
            if !list.is_empty() {
                slot.push((kind, list));
            }
        }
        let table = Arc::new(Table::new(&self.groups, routes));
        check_recovered(
            &recovered,
            |id| table.candidates(id).is_some(),
            "neither a model of a fallback group nor a group name",
            &mut errors,
        );
        errors.into_result(ProviderFallbackLayer::from_parts(table, Arc::new(policy)))
    }
}

fn route_path(model: Option<&str>, kind: ErrorKind) -> String {
    let base = match kind {
        ErrorKind::ContextWindowExceeded => "context_window_fallbacks".to_owned(),
        ErrorKind::ContentFilter => "content_filter_fallbacks".to_owned(),
        kind => format!("route_on.{kind}"),
    };
    match model {
        Some(model) if base.starts_with("route_on") => format!("{base}.{model}"),
        Some(model) => format!("{base}_per_model.{model}"),
        None => base,
    }
}
