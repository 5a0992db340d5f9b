//! `router_settings`, `litellm_settings` and `general_settings`: what they
//! set that the translation honours; everything else is a warning.

use std::time::Duration;

use serde_norway::{Mapping, Value};

use super::read::{entries, join, Reader, Secret};

/// `from -> [to, ...]` of a fallbacks list, with its path.
#[derive(Clone, Debug)]
pub(crate) struct FallbackRule {
    pub(crate) path: String,
    pub(crate) from: String,
    pub(crate) to: Vec<String>,
}

/// Redis of `router_settings`, which LiteLLM shares cooldowns and usage on.
#[derive(Clone, Debug, Default)]
pub(crate) struct Redis {
    pub(crate) path: String,
    pub(crate) host: Option<String>,
    pub(crate) port: Option<u64>,
    pub(crate) password: Option<Secret>,
    pub(crate) url: Option<Secret>,
}

/// The honoured settings; `router_settings` wins over `litellm_settings`.
#[derive(Clone, Debug, Default)]
pub(crate) struct Settings {
    pub(crate) strategy: Option<(String, String)>,
    pub(crate) latency_buffer: Option<f64>,
    pub(crate) num_retries: Option<u32>,
    /// The router's: the whole call, and each attempt.
    pub(crate) timeout: Option<Duration>,
    /// `request_timeout`: each attempt.
    pub(crate) request_timeout: Option<Duration>,
    pub(crate) stream_timeout: Option<Duration>,
    pub(crate) allowed_fails: Option<u32>,
    pub(crate) cooldown_time: Option<Duration>,
    pub(crate) disable_cooldowns: Option<bool>,
    /// (path, `XxxErrorRetries`, count)
    pub(crate) retry_policy: Vec<(String, String, u32)>,
    pub(crate) fallbacks: Vec<FallbackRule>,
    pub(crate) context_window: Vec<FallbackRule>,
    pub(crate) content_policy: Vec<FallbackRule>,
    pub(crate) default_fallbacks: Option<(String, Vec<String>)>,
    pub(crate) max_fallbacks: Option<usize>,
    pub(crate) redis: Redis,
    pub(crate) master_key: Option<(String, Secret)>,
    /// (path, alias, group) of `model_group_alias`.
    pub(crate) aliases: Vec<(String, String, String)>,
}

/// Reads `router_settings` or `litellm_settings` (`section`) into `s`.
pub(crate) fn read_section(r: &mut Reader<'_>, section: &str, value: &Value, s: &mut Settings) {
    let Some(map) = r.map(section, value) else {
        return;
    };
    let router = section == "router_settings";
    for (key, value) in entries(r, section, map) {
        let at = join(section, &key);
        let small = |n: u64| n.min(u64::from(u32::MAX)) as u32;
        match key.as_str() {
            "num_retries" => s.num_retries = r.count(&at, value).map(small),
            "timeout" if router => s.timeout = r.seconds(&at, value),
            "timeout" | "request_timeout" => s.request_timeout = r.seconds(&at, value),
            "stream_timeout" => s.stream_timeout = r.seconds(&at, value),
            "allowed_fails" => s.allowed_fails = r.count(&at, value).map(small),
            "cooldown_time" => s.cooldown_time = r.seconds(&at, value),
            "disable_cooldowns" => s.disable_cooldowns = r.flag(&at, value),
            "max_fallbacks" => {
                s.max_fallbacks = r.count(&at, value).map(|n| n.min(1 << 16) as usize)
            }
            "retry_policy" => s.retry_policy = retry_policy(r, &at, value),
            "fallbacks" => s.fallbacks = rules(r, &at, value),
            "context_window_fallbacks" => s.context_window = rules(r, &at, value),
            "content_policy_fallbacks" => s.content_policy = rules(r, &at, value),
            "default_fallbacks" => s.default_fallbacks = Some((at.clone(), r.names(&at, value))),
            "allowed_fails_policy" => r.warnings.push(
                at,
                "per-error-kind failure thresholds are not supported: a model cools after \
                 `allowed_fails` + 1 failures of any kind",
            ),
            "routing_strategy" if router => {
                s.strategy = r.plain(&at, value).map(|name| (at.clone(), name))
            }
            "routing_strategy_args" if router => routing_args(r, &at, value, s),
            "model_group_alias" if router => s.aliases = group_aliases(r, &at, value),
            "redis_host" if router => s.redis.host = r.text(&at, value),
            "redis_port" if router => s.redis.port = r.count(&at, value),
            "redis_password" if router => s.redis.password = r.secret(&at, value),
            "redis_url" if router => s.redis.url = r.secret(&at, value),
            _ => r.warnings.push(at, "not supported; ignored"),
        }
        if key.starts_with("redis_") && router {
            s.redis.path = section.to_owned();
        }
    }
}

/// Reads `general_settings`: the master key guards the server.
pub(crate) fn read_general(r: &mut Reader<'_>, value: &Value, s: &mut Settings) {
    let Some(map) = r.map("general_settings", value) else {
        return;
    };
    for (key, value) in entries(r, "general_settings", map) {
        let at = join("general_settings", &key);
        match key.as_str() {
            "master_key" => {
                s.master_key = r.secret(&at, value).map(|secret| (at.clone(), secret));
            }
            _ => r.warnings.push(at, "not supported; ignored"),
        }
    }
}

/// `routing_strategy_args`: `lowest_latency_buffer` only.
fn routing_args(r: &mut Reader<'_>, path: &str, value: &Value, s: &mut Settings) {
    let Some(map) = r.map(path, value) else {
        return;
    };
    for (key, value) in entries(r, path, map) {
        let at = join(path, &key);
        match key.as_str() {
            "lowest_latency_buffer" => s.latency_buffer = r.number(&at, value),
            _ => r.warnings.push(at, "not supported; ignored"),
        }
    }
}

/// `model_group_alias: { "gpt-4": "gpt-3.5-turbo" }` (or `{ model: ..., hidden: ... }`).
fn group_aliases(r: &mut Reader<'_>, path: &str, value: &Value) -> Vec<(String, String, String)> {
    let Some(map) = r.map(path, value) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (alias, target) in entries(r, path, map) {
        let at = join(path, &alias);
        let group = match target {
            Value::Mapping(m) => {
                if m.get("hidden").is_some() {
                    r.warnings.push(
                        join(&at, "hidden"),
                        "every alias is listed on /v1/models here; ignored",
                    );
                }
                m.get("model").and_then(|v| r.plain(&join(&at, "model"), v))
            }
            other => r.plain(&at, other),
        };
        if let Some(group) = group {
            out.push((at, alias, group));
        }
    }
    out
}

/// `retry_policy: { RateLimitErrorRetries: 3, ... }`.
fn retry_policy(r: &mut Reader<'_>, path: &str, value: &Value) -> Vec<(String, String, u32)> {
    let Some(map) = r.map(path, value) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (key, value) in entries(r, path, map) {
        let at = join(path, &key);
        if let Some(n) = r.count(&at, value) {
            out.push((at, key, n.min(u64::from(u32::MAX)) as u32));
        }
    }
    out
}

/// `[{"gpt-4": ["gpt-3.5"]}, ...]` (LiteLLM's form), or one mapping.
fn rules(r: &mut Reader<'_>, path: &str, value: &Value) -> Vec<FallbackRule> {
    let mut out = Vec::new();
    let mut read_map = |r: &mut Reader<'_>, at: &str, map: &Mapping| {
        for (from, to) in entries(r, at, map) {
            let rule_path = join(at, &from);
            let to = r.names(&rule_path, to);
            out.push(FallbackRule {
                path: rule_path,
                from,
                to,
            });
        }
    };
    match value {
        Value::Mapping(map) => read_map(r, path, map),
        _ => {
            for (i, item) in r.list(path, value).unwrap_or(&[]).iter().enumerate() {
                let at = format!("{path}[{i}]");
                if let Some(map) = r.map(&at, item) {
                    read_map(r, &at, map);
                }
            }
        }
    }
    out
}
