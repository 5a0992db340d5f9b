//! The router's global settings into `[retry]`, `[timeout]`, `[cooldown]`,
//! `[fallback]`, `[store]` and `[server]`.

use std::time::Duration;

use super::read::{Reader, Secret};
use super::secrets::{FileEnv, Source};
use super::settings::Settings;
use crate::config::Config;
use crate::layers::cooldown::FailureRatioConfig;
use crate::settings::{HumanDuration, Switch, TimeLimit};
use crate::store::StoreKind;

/// LiteLLM's default cooldown rule: more than half of a minute's calls
/// failed, with at least this many calls.
const LITELLM_MIN_CALLS: u32 = 5;

/// The variable the Redis URL built from host, port and password is served as.
const REDIS_URL_VAR: &str = "LITELLM_REDIS_URL";

/// The variable a master key written in the file is served as.
const MASTER_KEY_VAR: &str = "LITELLM_MASTER_KEY";

/// Applies `s` to `config`.
pub(crate) fn apply(r: &mut Reader<'_>, s: &Settings, config: &mut Config, env: &mut FileEnv) {
    if let Some(n) = s.num_retries {
        config.retry.max_retries.default = Some(n);
    }
    retry_policy(r, s, config);
    // The router's timeout bounds the whole call and is passed down to each
    // completion, over request_timeout.
    if let Some(t) = s.timeout.or(s.request_timeout) {
        config.timeout.attempt.default = Some(TimeLimit::After(t));
    }
    if let Some(t) = s.timeout {
        config.timeout.total = Some(HumanDuration(t));
    }
    if let Some(t) = s.stream_timeout {
        config.timeout.first_token.default = Some(TimeLimit::After(t));
    }
    let cooldown = &mut config.cooldown;
    match s.allowed_fails {
        // LiteLLM cools a deployment once its failures exceed allowed_fails.
        Some(n) => {
            cooldown.consecutive_failures.default = Some(n.saturating_add(1));
            cooldown.failure_ratio = Switch::Off;
        }
        None => {
            cooldown.failure_ratio = Switch::On(FailureRatioConfig {
                ratio: Some(0.5),
                window: Some(HumanDuration(Duration::from_secs(60))),
                min_calls: Some(LITELLM_MIN_CALLS),
            });
        }
    }
    if let Some(t) = s.cooldown_time {
        cooldown.cooldown.default = Some(HumanDuration(t));
    }
    if s.disable_cooldowns == Some(true) {
        cooldown.enabled = Some(false);
    }
    if let Some(n) = s.max_fallbacks {
        config.fallback.max_fallbacks = Some(n);
    }
    store(r, s, config, env);
    if let Some((path, key)) = &s.master_key {
        config.server.api_key_env = Some(match key {
            Secret::Env(var) => var.clone(),
            Secret::Literal(value) => {
                r.warnings.push(
                    path,
                    format!("a key written in the file: used as it is, never printed; the native config reads it from {MASTER_KEY_VAR}"),
                );
                env.insert(MASTER_KEY_VAR.to_owned(), Source::Literal(value.clone()));
                MASTER_KEY_VAR.to_owned()
            }
        });
    }
}

/// `retry_policy`: the counts of the kinds the retry layer retries (rate
/// limits, server errors) set `max_retries`; the others must be 0.
fn retry_policy(r: &mut Reader<'_>, s: &Settings, config: &mut Config) {
    let mut retried = None::<u32>;
    for (path, kind, n) in &s.retry_policy {
        match kind.as_str() {
            "RateLimitErrorRetries" | "InternalServerErrorRetries" => {
                if retried.is_some_and(|m| m != *n) {
                    r.warnings.push(
                        path,
                        "rate limits and server errors get the same number of retries here: the larger",
                    );
                }
                retried = Some(retried.map_or(*n, |m| m.max(*n)));
            }
            "BadRequestErrorRetries"
            | "AuthenticationErrorRetries"
            | "ContentPolicyViolationErrorRetries"
            | "TimeoutErrorRetries"
                if *n > 0 =>
            {
                r.warnings.push(
                    path,
                    "never retried here (a bad request, a bad key, a refused prompt or a silent route \
                     fails the same way again); the next candidate is tried instead",
                )
            }
            "BadRequestErrorRetries"
            | "AuthenticationErrorRetries"
            | "ContentPolicyViolationErrorRetries"
            | "TimeoutErrorRetries" => {}
            _ => r.warnings.push(path, "not a retry_policy kind; ignored"),
        }
    }
    if let Some(n) = retried {
        config.retry.max_retries.default = Some(n);
    }
}

/// Redis: `redis_url` as it is, or a URL made of host, port and password.
fn store(r: &mut Reader<'_>, s: &Settings, config: &mut Config, env: &mut FileEnv) {
    let redis = &s.redis;
    let url_env = match (&redis.url, &redis.host) {
        (Some(Secret::Env(var)), _) => Some(var.clone()),
        (Some(Secret::Literal(url)), _) => {
            env.insert(REDIS_URL_VAR.to_owned(), Source::Literal(url.clone()));
            Some(REDIS_URL_VAR.to_owned())
        }
        (None, Some(host)) => {
            env.insert(
                REDIS_URL_VAR.to_owned(),
                Source::RedisUrl {
                    host: host.clone(),
                    port: redis.port.unwrap_or(6379),
                    password: redis.password.clone(),
                },
            );
            Some(REDIS_URL_VAR.to_owned())
        }
        (None, None) => {
            if redis.port.is_some() || redis.password.is_some() {
                r.warnings.push(
                    &redis.path,
                    "redis_port or redis_password without redis_host; no Redis",
                );
            }
            None
        }
    };
    if let Some(var) = url_env {
        if var == REDIS_URL_VAR {
            r.warnings.push(
                &redis.path,
                format!("Redis (cooldowns and usage shared) is used as configured; the native config reads its URL from {REDIS_URL_VAR}, redis://[:password@]host:port"),
            );
        }
        config.store.kind = StoreKind::Redis;
        config.store.url_env = Some(var);
    }
}
