//! The `[fallback]` and `[server]` sections of a config file (the other
//! sections live with their layers: `layers::<name>::config`).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::secret::EnvName;
use crate::settings::{HumanDuration, PerModelSetting};

/// `[fallback]`: groups of equivalent models and the routes dedicated to
/// error kinds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct FallbackSettings {
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

/// `[server]`: the HTTP side (used by [`Stack::server`](crate::Stack) and the
/// gateway program).
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct ServerConfig {
    /// The address to listen on (default `127.0.0.1:8080`; `--listen` overrides).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    /// The environment variable holding the key clients must send as
    /// `Authorization: Bearer <key>` (default: no key required).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
    /// The largest request body, in bytes (default 4 MiB).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_limit: Option<usize>,
    /// Pass requests for models not listed to the providers instead of 404.
    pub allow_unlisted_models: bool,
    /// How long in-flight answers may finish on shutdown (default 20 s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shutdown_grace: Option<HumanDuration>,
}

// By hand: a key pasted where its variable's name belongs is not shown.
impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerConfig")
            .field("listen", &self.listen)
            .field("api_key_env", &EnvName(self.api_key_env.as_deref()))
            .field("body_limit", &self.body_limit)
            .field("allow_unlisted_models", &self.allow_unlisted_models)
            .field("shutdown_grace", &self.shutdown_grace)
            .finish()
    }
}
