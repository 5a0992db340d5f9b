//! The sections of a config file, as plain serde data.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::server::ServerConfig;
use crate::chat::Message;
use crate::layers::balance::{RouteCandidates, RoutingStrategy};
use crate::layers::cooldown::CooldownConfig;
use crate::layers::fallback::FallbackConfig;
use crate::layers::limit::LimitConfig;
use crate::layers::retry::RetryConfig;
use crate::layers::timeout::TimeoutConfig;
use crate::providers::credentials::CredentialConfig;
use crate::secret::EnvName;
use crate::settings::PerModelSetting;
use crate::store::StoreConfig;

/// The whole configuration. See the [module docs](super) for the file format.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// Endpoints and their credentials, by provider name (the part of a model
    /// id before the `/`).
    pub providers: BTreeMap<String, ProviderConfig>,
    /// Aliases clients may request, each an ordered or a weighted list.
    pub routes: BTreeMap<String, RouteConfig>,
    /// More model ids to serve and list, besides those the routes name.
    pub models: Vec<String>,
    /// Messages placed before the caller's, for the model actually called
    /// (Not Diamond's `model_messages`).
    pub model_messages: PerModelSetting<Vec<Message>>,
    /// Seeds weighted draws and backoff jitter, for reproducible runs.
    pub seed: Option<u64>,
    /// Deadlines.
    pub timeout: TimeoutConfig,
    /// Retries of the same model.
    pub retry: RetryConfig,
    /// The per-model circuit breaker.
    pub cooldown: CooldownConfig,
    /// Fallback groups and the routes dedicated to error kinds.
    pub fallback: FallbackConfig,
    /// Settings of the HTTP server (the gateway program).
    pub server: ServerConfig,
    /// Where breakers and usage counts live: memory, or Redis to share them
    /// between replicas.
    pub store: StoreConfig,
    /// Model id -> its requests and tokens per minute (`{ rpm = 600, tpm =
    /// 90000 }`), held wherever the model is called.
    pub limits: LimitConfig,
}

/// Which API a provider speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ProviderKind {
    /// Any OpenAI-compatible chat-completions endpoint (OpenAI, OpenRouter,
    /// vLLM, Ollama, Groq ...): `base_url`.
    #[serde(rename = "openai")]
    OpenAi,
    /// An Azure OpenAI resource: `endpoint`, `api_version`; model names are
    /// deployment names.
    Azure,
    /// Anthropic's Messages API: `base_url`.
    Anthropic,
}

impl ProviderKind {
    /// The name used in config files.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "openai",
            ProviderKind::Azure => "azure",
            ProviderKind::Anthropic => "anthropic",
        }
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One provider: an endpoint and the environment variable(s) holding its
/// key(s). Keys themselves never appear in the file; header values, which may hold
/// credentials too, are left out of its `Debug` output.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ProviderConfig {
    /// Which API it speaks.
    pub kind: ProviderKind,
    /// The API root of `openai` and `anthropic` providers (default: the
    /// vendor's public API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// The resource endpoint of an `azure` provider (required for it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Azure's `api-version` (default: the client's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// The environment variable holding the key; none for keyless local servers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
    /// Several keys instead of `api_key_env`, rotated when one is
    /// rate-limited, out of quota or revoked (see
    /// [`credentials`](crate::providers::credentials)): each names its variable(s),
    /// with an optional label, tier and weight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<Vec<CredentialConfig>>,
    /// Headers sent with every call (never logged).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Whether the endpoint continues a trailing assistant message (prefill):
    /// mid-stream recovery then sends every model of this provider the
    /// partial answer to continue. Default: true for `anthropic`, false
    /// otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supports_prefill: Option<bool>,
}

impl fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderConfig")
            .field("kind", &self.kind)
            .field("base_url", &self.base_url)
            .field("endpoint", &self.endpoint)
            .field("api_version", &self.api_version)
            .field("api_key_env", &EnvName(self.api_key_env.as_deref()))
            .field("keys", &self.keys)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("supports_prefill", &self.supports_prefill)
            .finish()
    }
}

impl ProviderConfig {
    /// A provider of `kind` with every other setting at its default.
    pub fn new(kind: ProviderKind) -> Self {
        ProviderConfig {
            kind,
            base_url: None,
            endpoint: None,
            api_version: None,
            api_key_env: None,
            keys: None,
            headers: BTreeMap::new(),
            supports_prefill: None,
        }
    }

    /// Whether the endpoint continues a trailing assistant message.
    pub fn prefill(&self) -> bool {
        self.supports_prefill
            .unwrap_or(self.kind == ProviderKind::Anthropic)
    }
}

/// A route: what a request for its alias goes to.
///
/// - `["azure/gpt-4o-mini", "openai/gpt-4o-mini"]` (or one id as a string):
///   tried in order;
/// - `{ models = [...], fallbacks = [...] }`: the same, with the fallbacks after;
/// - `{ weights = { "azure/gpt-4o" = 3, "openai/gpt-4o" = 1 }, fallbacks = [...] }`:
///   a weighted draw among the candidates (without repeats), then the
///   fallbacks in order once every candidate failed; with `strategy =
///   "least_busy"` (or `lowest_usage`, `lowest_latency`), the candidates it
///   ranks best are drawn first.
///
/// Items of `models` and `fallbacks` are model ids or other route aliases.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum RouteConfig {
    /// Model ids (or aliases) tried in order.
    Ordered(Vec<String>),
    /// The table form.
    Table(RouteTable),
}

/// The table form of a [`RouteConfig`]: exactly one of `models` and `weights`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct RouteTable {
    /// Tried in order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub models: Option<Vec<String>>,
    /// Drawn by weight: a map from model id to weight, or a list of ids and
    /// `{ model, weight }` tables (weight 1 when not given).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weights: Option<RouteCandidates>,
    /// Tried in order after the above all failed (LiteLLM's `fallbacks`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fallbacks: Vec<String>,
    /// With `weights`: how to pick among the available candidates
    /// (`weighted`, the default; `least_busy`, `lowest_usage`, `lowest_latency`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strategy: Option<RoutingStrategy>,
    /// With `strategy = "lowest_latency"`: candidates within this share of
    /// the fastest's latency share the load (default 0.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_buffer: Option<f64>,
}

impl<'de> Deserialize<'de> for RouteConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct RouteVisitor;
        impl<'de> Visitor<'de> for RouteVisitor {
            type Value = RouteConfig;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a list of model ids, a model id, or a table with `models` or `weights`",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RouteConfig, E> {
                Ok(RouteConfig::Ordered(vec![v.to_owned()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<RouteConfig, A::Error> {
                Vec::deserialize(de::value::SeqAccessDeserializer::new(seq))
                    .map(RouteConfig::Ordered)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RouteConfig, A::Error> {
                RouteTable::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(RouteConfig::Table)
            }
        }
        d.deserialize_any(RouteVisitor)
    }
}
