//! Building a [`ProviderFallbackLayer`]: from code, or from a config value.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::candidates::{dedup, KindRoutes, List, Table};
use super::groups::FallbackGroups;
use super::ProviderFallbackLayer;
use crate::chat::{validate_model_id, ConfigError, ErrorKind, PerModel};
use crate::layers::health::Health;
use crate::layers::route::{parse_kind, RoutePolicy};

/// The fallback settings as plain data (serde), e.g. a section of a config file.
///
/// ```
/// use llm_fallback::{FallbackConfig, ProviderFallbackLayer};
/// let config: FallbackConfig = serde_json::from_value(serde_json::json!({
///     "groups": [["azure/gpt-4o-mini", "openai/gpt-4o-mini"]],
///     "named_groups": {"smart": ["anthropic/claude-3-5-sonnet-20240620", "openai/gpt-4o"]},
///     "context_window_fallbacks": ["openai/gpt-4.1"],
///     "fallback_on": {"bad_request": true},
///     "max_fallbacks": 3
/// })).unwrap();
/// let layer = ProviderFallbackLayer::from_config(&config).unwrap();
/// # let _ = layer;
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FallbackConfig {
    /// Groups of equivalent models, each in priority order.
    pub groups: Vec<Vec<String>>,
    /// Named groups: a request for the name tries the list in order.
    pub named_groups: BTreeMap<String, Vec<String>>,
    /// Also read groups from `MODEL_FALLBACK_GROUPS` (default: false).
    pub groups_from_env: bool,
    /// Where a `context_window_exceeded` failure goes, for every model.
    pub context_window_fallbacks: Vec<String>,
    /// Where it goes, per failing model (takes precedence over the global list).
    pub context_window_fallbacks_per_model: BTreeMap<String, Vec<String>>,
    /// Where a `content_filter` failure goes, for every model (default: nowhere).
    pub content_filter_fallbacks: Vec<String>,
    /// Where it goes, per failing model.
    pub content_filter_fallbacks_per_model: BTreeMap<String, Vec<String>>,
    /// Overrides of which error kinds (by name, e.g. `bad_request`) trigger a fallback.
    pub fallback_on: BTreeMap<String, bool>,
    /// At most this many candidates after the first failed one (default: no bound).
    pub max_fallbacks: Option<usize>,
    /// Finish cut, stalled or broken streams on the next candidate, for every
    /// request (default: false). See [`FallbackBuilder::recover_streams`].
    pub recover_streams: bool,
    /// The same, per requested model or group name (takes precedence).
    pub recover_streams_for: BTreeMap<String, bool>,
    /// The models that continue a partial answer sent as a final assistant
    /// message (assistant prefill).
    pub prefill_supported: Vec<String>,
}

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
    policy: RoutePolicy,
    recover_all: bool,
    recover_for: Vec<(String, bool)>,
    errors: ConfigError,
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

    /// Whether a failure of `kind` moves on to the next candidate (default:
    /// [`ErrorKind::is_fallbackable`]).
    pub fn fallback_on(mut self, kind: ErrorKind, on: bool) -> Self {
        self.policy.set_fallback_on(kind, on);
        self
    }

    /// Calls at most `n` candidates after the first failed one; candidates
    /// skipped while cooling down do not count. Default: no bound.
    pub fn max_fallbacks(mut self, n: usize) -> Self {
        self.policy.max_fallbacks = Some(n);
        self
    }

    /// Caps the upstream calls of one call, retries and fallbacks together
    /// (default [`MaxUpstreamCalls::DEFAULT`](crate::MaxUpstreamCalls::DEFAULT),
    /// 4; skips do not count). A request carrying its own
    /// [`MaxUpstreamCalls`](crate::MaxUpstreamCalls) keeps it. At least 1.
    pub fn max_upstream_calls(mut self, n: usize) -> Self {
        self.policy.max_upstream_calls = Some(n);
        self
    }

    /// No cap on upstream calls: only the retry and fallback bounds apply.
    pub fn no_upstream_call_cap(mut self) -> Self {
        self.policy.max_upstream_calls = None;
        self
    }

    /// Skips candidates that `health` says are cooling down (default: all healthy).
    pub fn with_health(mut self, health: Health) -> Self {
        self.policy.health = health;
        self
    }

    /// Mid-stream recovery for every request (default: off): when a stream
    /// that has started (past its first token) is cut, stalls, sends an
    /// event that cannot be read, or an in-band error of a kind that falls
    /// back (not a content filter or a bad request), the answer is finished
    /// on the next candidate of the request's group instead of failing.
    ///
    /// - A model declared with [`prefill_supported`](Self::prefill_supported)
    ///   gets the conversation plus the partial answer as a final assistant
    ///   message, and only its continuation is streamed.
    /// - Any other model answers from the beginning; its answer is spliced
    ///   on only if it begins with exactly the text already delivered (that
    ///   part is swallowed), else the next candidate is tried.
    /// - If no candidate finishes the answer, the caller's stream ends with
    ///   the original fault (the cut, stall or break of the model that served),
    ///   never a recovery attempt's own error (such as a 400 rejecting the
    ///   prefill); the attempt log lists them all.
    ///
    /// Streams with tool calls, refusals or several choices are never
    /// spliced. Every chunk keeps the `id`, `created`, `system_fingerprint`
    /// and `model` (the full id of the model that served first) the caller
    /// saw first, so the stream stays one consistent answer; the attempt log
    /// says which model finished it. The usage in the last chunk sums every
    /// stream that reported one. Stalls are detected
    /// by an inner [`Timeout`](crate::Timeout) layer with an idle deadline
    /// ([`StreamDeadlines`](crate::StreamDeadlines)).
    ///
    /// ```
    /// use llm_fallback::ProviderFallbackLayer;
    ///
    /// let layer = ProviderFallbackLayer::builder()
    ///     .group(["azure/gpt-4o-mini", "openai/gpt-4o-mini", "anthropic/claude-3-5-haiku-latest"])
    ///     .recover_streams(true)
    ///     .prefill_supported("anthropic/claude-3-5-haiku-latest")
    ///     .build()
    ///     .unwrap();
    /// # let _ = layer;
    /// ```
    pub fn recover_streams(mut self, on: bool) -> Self {
        self.recover_all = on;
        self
    }

    /// Mid-stream recovery for requests naming `id` (a model of a group, or
    /// a group name); takes precedence over
    /// [`recover_streams`](Self::recover_streams).
    pub fn recover_streams_for(mut self, id: impl Into<String>, on: bool) -> Self {
        self.recover_for.push((id.into(), on));
        self
    }

    /// Declares that `model` supports assistant prefill: given a
    /// conversation ending with a partial assistant message, it continues
    /// that message. Mid-stream recovery then sends it the partial answer.
    pub fn prefill_supported(mut self, model: impl Into<String>) -> Self {
        let model = model.into();
        if let Err(e) = validate_model_id(&model) {
            self.errors.push(format!("prefill_supported.{model}"), e);
        }
        self.policy.recovery.prefill.insert(model);
        self
    }

    /// Applies a config value.
    pub fn config(mut self, config: &FallbackConfig) -> Self {
        for group in &config.groups {
            self = self.group(group.iter().cloned());
        }
        for (name, models) in &config.named_groups {
            self = self.named_group(name.clone(), models.iter().cloned());
        }
        if config.groups_from_env {
            self = self.groups_from_env();
        }
        let kind_lists = [
            (
                ErrorKind::ContextWindowExceeded,
                &config.context_window_fallbacks,
                &config.context_window_fallbacks_per_model,
            ),
            (
                ErrorKind::ContentFilter,
                &config.content_filter_fallbacks,
                &config.content_filter_fallbacks_per_model,
            ),
        ];
        for (kind, global, per_model) in kind_lists {
            if !global.is_empty() {
                self = self.route_on(kind, global.iter().cloned());
            }
            for (model, models) in per_model {
                self = self.route_on_for(model.clone(), kind, models.iter().cloned());
            }
        }
        for (name, on) in &config.fallback_on {
            match parse_kind(name) {
                Ok(kind) => self = self.fallback_on(kind, *on),
                Err(e) => self.errors.push(format!("fallback_on.{name}"), e),
            }
        }
        if let Some(n) = config.max_fallbacks {
            self = self.max_fallbacks(n);
        }
        if config.recover_streams {
            self = self.recover_streams(true);
        }
        for (id, on) in &config.recover_streams_for {
            self = self.recover_streams_for(id.clone(), *on);
        }
        for model in &config.prefill_supported {
            self = self.prefill_supported(model.clone());
        }
        self
    }

    /// The layer, or every problem found.
    pub fn build(self) -> Result<ProviderFallbackLayer, ConfigError> {
        let mut errors = self.errors;
        if self.policy.max_upstream_calls == Some(0) {
            errors.push("max_upstream_calls", "must be at least 1");
        }
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
        let mut policy = self.policy;
        policy.recovery.enabled = PerModel::new(self.recover_all);
        for (id, on) in self.recover_for {
            if table.candidates(&id).is_none() {
                errors.push(
                    format!("recover_streams_for.{id}"),
                    format!("{id:?} is neither a model of a fallback group nor a group name"),
                );
            }
            policy.recovery.enabled.set(id, on);
        }
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
