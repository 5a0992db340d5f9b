//! `[fallback]`: the section of a config file, and the layer it builds.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::builder::FallbackBuilder;
use super::groups::FallbackGroups;
use super::ProviderFallbackLayer;
use crate::chat::{ConfigError, ErrorKind};
use crate::layers::hedge::{Hedge, HedgeConfig};
use crate::layers::route::RouteOptions;
use crate::settings::{PerModelSetting, Scope};

/// `[fallback]`: groups of equivalent models, the routes dedicated to error
/// kinds, and the [`RouteOptions`](crate::RouteOptions) of both routing
/// layers.
///
/// In a [`Config`](crate::Config), keys and list items may also be route
/// aliases (the stack expands them); on its own
/// ([`ProviderFallbackLayer::from_config`]) they are model ids and group
/// names.
///
/// ```
/// use llm_fallback::layers::fallback::FallbackConfig;
/// use llm_fallback::ProviderFallbackLayer;
/// let config: FallbackConfig = serde_json::from_value(serde_json::json!({
///     "groups": "azure/gpt-4o-mini,openai/gpt-4o-mini; smart=anthropic/claude-3-5-sonnet-20240620,openai/gpt-4o",
///     "context_window_fallbacks": ["openai/gpt-4.1"],
///     "fallback_on": {"bad_request": true},
///     "max_fallbacks": 3
/// })).unwrap();
/// let layer = ProviderFallbackLayer::from_config(&config).unwrap();
/// # let _ = layer;
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct FallbackConfig {
    /// Groups of equivalent models: a list of lists, or a string in the
    /// `MODEL_FALLBACK_GROUPS` format. A request for a member tries it, then
    /// the rest of its group in order.
    pub groups: GroupsSetting,
    /// Also read groups from the `MODEL_FALLBACK_GROUPS` variable (default false).
    pub groups_from_env: bool,
    /// Where a `context_window_exceeded` failure goes: one list for every
    /// model, or per model id / route alias (LiteLLM's `context_window_fallbacks`).
    pub context_window_fallbacks: PerModelSetting<Vec<String>>,
    /// Where a `content_filter` failure goes (default: nowhere).
    pub content_filter_fallbacks: PerModelSetting<Vec<String>>,
    /// Which error kinds move on to the next candidate, by name
    /// (`bad_request = true`), overriding the failure-class table.
    pub fallback_on: BTreeMap<String, bool>,
    /// At most this many candidates after the first failed one, at each
    /// routing level (default: no bound).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_fallbacks: Option<usize>,
    /// At most this many upstream calls for one call, retries and
    /// fallbacks together; skips do not count (default 4, at least 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_upstream_calls: Option<usize>,
    /// Finish a stream cut or stalled after its first token on the next
    /// candidate (default false): one value, or per route alias, group name
    /// or grouped model id, i.e. per id a request names. See
    /// [`RouteOptions::recover_streams`](crate::RouteOptions::recover_streams).
    pub recover_streams: PerModelSetting<bool>,
    /// Hedged calls, for both routing layers (default: off). See
    /// [`HedgeConfig`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hedge: Option<HedgeConfig>,
}

/// Fallback groups: lists, or the `MODEL_FALLBACK_GROUPS` format.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum GroupsSetting {
    /// `[["azure/gpt-4o", "openai/gpt-4o"], ...]`
    Lists(Vec<Vec<String>>),
    /// `"azure/gpt-4o,openai/gpt-4o; fast=groq/llama-3.1-8b,openai/gpt-4o-mini"`
    Spec(String),
}

impl Default for GroupsSetting {
    fn default() -> Self {
        GroupsSetting::Lists(Vec::new())
    }
}

impl FallbackConfig {
    /// `options` with what this section sets for both routing layers, but
    /// the per-id `recover_streams` (whose keys a stack expands); problems
    /// go to `errors` under `<prefix><field>`.
    pub(crate) fn route_options(
        &self,
        mut options: RouteOptions,
        prefix: &str,
        errors: &mut ConfigError,
    ) -> RouteOptions {
        options = options.fallback_on_names(&self.fallback_on, prefix, errors);
        if let Some(n) = self.max_fallbacks {
            options = options.max_fallbacks(n);
        }
        match self.max_upstream_calls {
            Some(0) => errors.push(format!("{prefix}max_upstream_calls"), "must be at least 1"),
            Some(n) => options = options.max_upstream_calls(n),
            None => {}
        }
        options.recover_streams(self.recover_streams.default.unwrap_or(false))
    }
}

impl FallbackConfig {
    /// The hedge of `hedge`, if set, its model keys checked against
    /// `scope` (whose keys a stack expands); problems go to `errors`.
    pub(crate) fn hedge(&self, scope: &Scope, errors: &mut ConfigError) -> Option<Hedge> {
        match Hedge::from_config(self.hedge.as_ref()?, scope) {
            Ok(hedge) => Some(hedge),
            Err(e) => {
                errors.extend(e);
                None
            }
        }
    }
}

impl ProviderFallbackLayer {
    /// Builds the layer from a config value (every problem at once).
    pub fn from_config(config: &FallbackConfig) -> Result<Self, ConfigError> {
        Self::builder().config(config).build()
    }
}

impl FallbackBuilder {
    /// Applies a config value.
    pub fn config(mut self, config: &FallbackConfig) -> Self {
        self = match &config.groups {
            GroupsSetting::Lists(lists) => {
                lists.iter().fold(self, |b, g| b.group(g.iter().cloned()))
            }
            GroupsSetting::Spec(spec) => match FallbackGroups::parse(spec) {
                Ok(groups) => self.groups(groups),
                Err(e) => {
                    for p in e.problems() {
                        self.errors.push("groups", &p.message);
                    }
                    self
                }
            },
        };
        if config.groups_from_env {
            self = self.groups_from_env();
        }
        let kind_lists = [
            (
                ErrorKind::ContextWindowExceeded,
                &config.context_window_fallbacks,
            ),
            (ErrorKind::ContentFilter, &config.content_filter_fallbacks),
        ];
        for (kind, setting) in kind_lists {
            if let Some(global) = setting.default.as_ref().filter(|l| !l.is_empty()) {
                self = self.route_on(kind, global.iter().cloned());
            }
            for (model, models) in &setting.models {
                self = self.route_on_for(model.clone(), kind, models.iter().cloned());
            }
        }
        let mut options = config.route_options(self.options.clone(), "", &mut self.errors);
        for (id, on) in &config.recover_streams.models {
            options = options.recover_streams_for(id.clone(), *on);
        }
        if let Some(hedge) = config.hedge(&Scope::new(), &mut self.errors) {
            options = options.hedge(hedge);
        }
        self.options(options)
    }
}
