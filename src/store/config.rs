//! `[store]`: where the cooldown and usage state live, checked without
//! connecting (a Redis connection opens on first use).

use std::fmt;

use serde::{Deserialize, Serialize};

#[cfg(feature = "redis")]
use super::RedisConnection;
use crate::chat::ConfigError;
use crate::secret::EnvName;
use crate::settings::{env_value, HumanDuration};

/// `[store]`: where breakers (models' and keys') and usage counts live. In
/// this process's memory by default; on Redis to share them between gateway
/// replicas (see [`store`](crate::store)); [`StoreConfig::backend`] says
/// where, [`Stores::from_config`](crate::stack::Stores::from_config) builds
/// the layers' stores there.
///
/// ```toml
/// [store]
/// type = "redis"
/// url_env = "REDIS_URL"          # or url = "redis://127.0.0.1:6379/0"
/// prefix = "gateway"             # default "llm-fallback"
/// op_timeout = "5ms"             # the budget of one store operation (default 5 ms)
/// ```
///
/// A URL may hold a password: it is never shown (`Debug`, problems,
/// `--check` print `redis://***@host`).
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct StoreConfig {
    /// `memory` (the default) or `redis`.
    #[serde(rename = "type")]
    pub kind: StoreKind,
    /// `redis://[[user]:password@]host[:port][/db]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The environment variable holding the URL, instead of `url`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url_env: Option<String>,
    /// The prefix of every key (default `llm-fallback`): gateways sharing a
    /// prefix share their state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// The time budget of one store operation (default 5 ms); past it, the
    /// call goes on with this process's view.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub op_timeout: Option<HumanDuration>,
}

/// Which store `[store]` describes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum StoreKind {
    /// In this process's memory.
    #[default]
    Memory,
    /// On a Redis server (feature `redis`).
    Redis,
}

impl fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreConfig")
            .field("kind", &self.kind)
            .field("url", &self.url.as_deref().map(redact_url))
            .field("url_env", &EnvName(self.url_env.as_deref()))
            .field("prefix", &self.prefix)
            .field("op_timeout", &self.op_timeout)
            .finish()
    }
}

/// `url` with its user and password replaced by `***`.
pub(crate) fn redact_url(url: &str) -> String {
    match userinfo(url) {
        Some(range) => format!("{}***{}", &url[..range.start], &url[range.end..]),
        None => url.to_owned(),
    }
}

/// `text` without the user and password of `url`, should a client echo them.
#[cfg(feature = "redis")]
fn scrub(text: &str, url: &str) -> String {
    match userinfo(url).filter(|r| !r.is_empty()) {
        Some(range) => text.replace(&url[range], "***"),
        None => text.to_owned(),
    }
}

/// Where the `user:password` part of `url` is: up to the last `@`, so that
/// a password with unescaped `/`, `#` or `@` is covered whole.
fn userinfo(url: &str) -> Option<std::ops::Range<usize>> {
    let start = url.find("://").map_or(0, |i| i + 3);
    url[start..].rfind('@').map(|at| start..start + at)
}

/// Where `[store]` keeps state.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Backend {
    /// This process's memory.
    Memory,
    /// One Redis connection, shared by every store built on it.
    #[cfg(feature = "redis")]
    Redis(RedisConnection),
}

/// The `--check` line of a memory store.
pub(crate) const MEMORY: &str = "memory (this process only)";

impl StoreConfig {
    /// Where the stores live, reading `url_env` with `env`: a Redis
    /// connection is not opened yet (an unreachable server is not an error,
    /// only a bad setting is).
    pub fn backend(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<Backend, ConfigError> {
        self.described(env).map(|(backend, _)| backend)
    }

    /// The backend, and one line for `--check` (without the password).
    pub(crate) fn described(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(Backend, String), ConfigError> {
        let mut errors = ConfigError::default();
        let s = self;
        if s.kind == StoreKind::Memory {
            let fields = [
                ("url", s.url.is_some()),
                ("url_env", s.url_env.is_some()),
                ("prefix", s.prefix.is_some()),
                ("op_timeout", s.op_timeout.is_some()),
            ];
            for (field, _) in fields.iter().filter(|(_, set)| *set) {
                errors.push(
                    format!("store.{field}"),
                    format!("a memory store takes no `{field}`; set type = \"redis\" to share state on Redis"),
                );
            }
            return errors.into_result((Backend::Memory, MEMORY.to_owned()));
        }
        let url = match (&s.url, &s.url_env) {
            (Some(_), Some(_)) => {
                errors.push("store", "give either `url` or `url_env`, not both");
                None
            }
            (None, None) => {
                errors.push(
                    "store",
                    "a redis store needs `url` or `url_env` (the variable holding the URL, e.g. REDIS_URL)",
                );
                None
            }
            (Some(url), None) => Some(("store.url", url.clone())),
            (None, Some(var)) => {
                env_value(env, "store.url_env", var, &mut errors).map(|url| ("store.url_env", url))
            }
        };
        let backend = redis(s, url, &mut errors);
        errors.into_result(backend)
    }
}

#[cfg(feature = "redis")]
fn redis(
    s: &StoreConfig,
    url: Option<(&str, String)>,
    errors: &mut ConfigError,
) -> (Backend, String) {
    // A stand-in URL, so that the other settings are checked too.
    let (url_path, url) = url.unwrap_or(("", "redis://127.0.0.1".to_owned()));
    let mut builder = RedisConnection::builder(url.as_str());
    if let Some(prefix) = &s.prefix {
        builder = builder.prefix(prefix.clone());
    }
    if let Some(budget) = s.op_timeout {
        builder = builder.op_timeout(budget.get());
    }
    let shown = redact_url(&url);
    match builder.build() {
        Ok(connection) if !url_path.is_empty() => {
            let summary = format!(
                "redis {shown}, prefix {:?}, {:?} per operation",
                connection.prefix(),
                connection.op_timeout()
            );
            return (Backend::Redis(connection), summary);
        }
        Ok(_) => {}
        Err(e) => {
            for p in e.problems() {
                if p.path != "store.url" {
                    errors.push(&p.path, &p.message);
                } else if !url_path.is_empty() {
                    let reason = p.message.trim_start_matches("not a Redis URL: ");
                    errors.push(
                        url_path,
                        format!(
                            "{shown:?} is not a Redis URL ({}); write redis://[[user]:password@]host[:port][/db]",
                            scrub(reason, &url)
                        ),
                    );
                }
            }
        }
    }
    (Backend::Memory, MEMORY.to_owned())
}

#[cfg(not(feature = "redis"))]
fn redis(
    _: &StoreConfig,
    _: Option<(&str, String)>,
    errors: &mut ConfigError,
) -> (Backend, String) {
    errors.push(
        "store.type",
        "this build has no Redis support (feature `redis`)",
    );
    (Backend::Memory, MEMORY.to_owned())
}
