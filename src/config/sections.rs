//! The layer sections of a config file: `[timeout]`, `[retry]`,
//! `[cooldown]`, `[fallback]`, `[server]`.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::Deserializer;
use serde::{Deserialize, Serialize};

use super::values::{HumanDuration, PerModelSetting, Switch, TimeLimit};
use crate::secret::EnvName;

/// `[timeout]`: the total budget of a call, the deadline of each attempt,
/// and the deadlines of streamed answers
/// ([`StreamDeadlines`](crate::StreamDeadlines)), each per model and each
/// `"none"` to switch it off.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct TimeoutSettings {
    /// The whole call's budget, fallbacks and retries included (default: none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<HumanDuration>,
    /// Each attempt's deadline, per model; for a stream, the time to its
    /// first token (default: 60 s for a complete answer,
    /// [`DEFAULT_ATTEMPT`](crate::layers::timeout::DEFAULT_ATTEMPT); none for a
    /// stream, which `first_token` bounds).
    pub attempt: PerModelSetting<TimeLimit>,
    /// Streams: connect plus response head, per model (default 15 s).
    pub headers: PerModelSetting<TimeLimit>,
    /// Streams: from the attempt's start to the first content chunk, per
    /// model (default 60 s).
    pub first_token: PerModelSetting<TimeLimit>,
    /// Streams: the longest gap between two chunks, per model (default 30 s).
    pub idle: PerModelSetting<TimeLimit>,
    /// Streams: from the attempt's start to the stream's end, per model
    /// (default: none).
    pub stream_total: PerModelSetting<TimeLimit>,
}

/// `[retry]`: retries of the same model.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct RetrySettings {
    /// Retries per call, per model; 0 turns them off (default 2).
    pub max_retries: PerModelSetting<u32>,
    /// The backoff between retries, per model.
    pub backoff: PerModelSetting<BackoffSettings>,
    /// The longest `Retry-After` worth waiting for (default 10 s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_retry_after: Option<HumanDuration>,
    /// The shared retry budget (`false` for none).
    pub budget: Switch<BudgetSettings>,
}

/// An exponential backoff; unset fields keep the default's (500 ms, ×2,
/// 8 s cap, full jitter). A plain number is the factor (Not Diamond's `backoff`).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct BackoffSettings {
    /// The first delay.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base: Option<HumanDuration>,
    /// The growth per retry, at least 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub factor: Option<f64>,
    /// The longest delay.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cap: Option<HumanDuration>,
    /// `full`, `decorrelated` or `none`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jitter: Option<JitterSetting>,
}

impl<'de> Deserialize<'de> for BackoffSettings {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Table {
            base: Option<HumanDuration>,
            factor: Option<f64>,
            cap: Option<HumanDuration>,
            jitter: Option<JitterSetting>,
        }
        let value = serde_json::Value::deserialize(d)?;
        if let Some(factor) = value.as_f64() {
            return Ok(BackoffSettings {
                factor: Some(factor),
                ..Default::default()
            });
        }
        let t: Table = super::values::from_value(value)?;
        Ok(BackoffSettings {
            base: t.base,
            factor: t.factor,
            cap: t.cap,
            jitter: t.jitter,
        })
    }
}

/// How backoff delays are randomised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JitterSetting {
    /// Uniform between zero and the curve (the default).
    Full,
    /// Uniform between the base and `factor ×` the previous delay.
    Decorrelated,
    /// The exact curve.
    None,
}

/// The retry budget: `ratio` retries per call over `window`, plus
/// `min_per_second` (defaults 10 s, 10, 0.2).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct BudgetSettings {
    /// How far back calls are counted (1 s to 60 s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<HumanDuration>,
    /// Retries allowed per second in any case.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_per_second: Option<u32>,
    /// Retries allowed per call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio: Option<f32>,
}

/// `[cooldown]`: the per-model circuit breaker.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct CooldownSettings {
    /// Whether failing models are cooled down at all (default true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Consecutive failures that trip a model's breaker, per model; 0 turns
    /// the rule off (default 5).
    pub consecutive_failures: PerModelSetting<u32>,
    /// How long a tripped model is skipped before one probe, per model (default 5 s).
    pub cooldown: PerModelSetting<HumanDuration>,
    /// Trips on a share of failures over a window (`false` for none).
    pub failure_ratio: Switch<FailureRatioSettings>,
    /// Grows the cooldown after each failed probe (default: constant).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub growth: Option<GrowthSettings>,
    /// The longest a `Retry-After` keeps a model cooling (default 10 min).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_retry_after: Option<HumanDuration>,
    /// What a call does when every candidate it has left is cooling:
    /// `"try_earliest"` (default: one attempt to the one that recovers
    /// first) or `"fail_fast"`; the same for routes and direct models.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub when_all_cooling: Option<String>,
    /// Client-side adaptive throttling (`false` for none; defaults
    /// `k = 2.0`, `window = "30s"`, `min_requests = 10`).
    pub adaptive_throttle: Switch<ThrottleSettings>,
}

/// Sheds calls to a failing model with probability
/// `(requests − k·accepts) / (requests + 1)` over `window`
/// (see [`AdaptiveThrottle`](crate::layers::cooldown::AdaptiveThrottle)).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct ThrottleSettings {
    /// The multiplier of accepts, at least 1 (default 2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub k: Option<f64>,
    /// How far back calls are counted (default 30 s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<HumanDuration>,
    /// Fewer calls in the window are never shed (default 10).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_requests: Option<u32>,
}

/// Trips when `ratio` of at least `min_calls` calls over `window` failed
/// (defaults 0.5, 30 s, 20).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct FailureRatioSettings {
    /// Share of failures, in (0, 1].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio: Option<f64>,
    /// The rolling window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<HumanDuration>,
    /// Fewer calls never trip.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_calls: Option<u32>,
}

/// Multiplies the cooldown by `factor` after each failed probe, up to `max`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct GrowthSettings {
    /// At least 1.
    pub factor: f64,
    /// The longest cooldown.
    pub max: HumanDuration,
}

impl GrowthSettings {
    /// Multiplies by `factor` after each failed probe, up to `max`.
    pub fn new(factor: f64, max: std::time::Duration) -> Self {
        GrowthSettings {
            factor,
            max: HumanDuration(max),
        }
    }
}

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
    /// [`FallbackBuilder::recover_streams`](crate::FallbackBuilder::recover_streams).
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
pub struct ServerSettings {
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
impl fmt::Debug for ServerSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerSettings")
            .field("listen", &self.listen)
            .field("api_key_env", &EnvName(self.api_key_env.as_deref()))
            .field("body_limit", &self.body_limit)
            .field("allow_unlisted_models", &self.allow_unlisted_models)
            .field("shutdown_grace", &self.shutdown_grace)
            .finish()
    }
}
