//! `[server]`: the section of a config file (used by the gateway, not a
//! layer, so it lives with the config), and its check.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::chat::ConfigError;
use crate::secret::{ApiKey, EnvName};
use crate::settings::{env_value, HumanDuration};

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
    /// Serve Prometheus metrics on `GET /metrics` (default `true`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics: Option<bool>,
    /// `/metrics` needs the client key when one is set (default `true`);
    /// `false` opens it to scrapers that cannot send one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_auth: Option<bool>,
    /// Serve `GET /metrics` on this address of its own instead of beside the
    /// API (e.g. `"0.0.0.0:9090"` for a scraper on an internal network;
    /// default: beside the API). `metrics_auth` still applies there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_listen: Option<String>,
    /// Serve `POST /admin/reload`, behind the client key (so it needs
    /// `api_key_env`), which reloads the config file (default `false`).
    pub admin_reload: bool,
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
            .field("metrics", &self.metrics)
            .field("metrics_auth", &self.metrics_auth)
            .field("metrics_listen", &self.metrics_listen)
            .field("admin_reload", &self.admin_reload)
            .finish()
    }
}

/// `[server]`, checked: what [`Stack::server`](crate::Stack) and the gateway use.
#[derive(Debug)]
#[cfg_attr(not(feature = "server"), allow(dead_code))]
pub(crate) struct ServerSetup {
    pub(crate) listen: Option<SocketAddr>,
    pub(crate) api_key: Option<ApiKey>,
    pub(crate) body_limit: Option<usize>,
    pub(crate) allow_unlisted: bool,
    pub(crate) shutdown_grace: Option<Duration>,
    /// Serve `GET /metrics`.
    pub(crate) metrics: bool,
    /// `/metrics` needs the client key (when one is set).
    pub(crate) metrics_auth: bool,
    /// Serve `/metrics` on this address instead of beside the API.
    pub(crate) metrics_listen: Option<SocketAddr>,
    /// Serve `POST /admin/reload` (behind the client key).
    pub(crate) admin_reload: bool,
}

impl Default for ServerSetup {
    fn default() -> Self {
        ServerSetup {
            listen: None,
            api_key: None,
            body_limit: None,
            allow_unlisted: false,
            shutdown_grace: None,
            metrics: true,
            metrics_auth: true,
            metrics_listen: None,
            admin_reload: false,
        }
    }
}

impl ServerSetup {
    /// Checks `[server]`, reading the client key with `env`.
    pub(crate) fn from_config(
        s: &ServerConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ServerSetup, ConfigError> {
        let mut errors = ConfigError::default();
        let mut address = |path: &str, value: Option<&str>| {
            value.and_then(|addr| match addr.parse::<SocketAddr>() {
                Ok(addr) => Some(addr),
                Err(_) => {
                    errors.push(
                        path,
                        format!("{addr:?} is not an address like \"127.0.0.1:8080\""),
                    );
                    None
                }
            })
        };
        let listen = address("server.listen", s.listen.as_deref());
        let metrics_listen = address("server.metrics_listen", s.metrics_listen.as_deref());
        if metrics_listen.is_some() && s.metrics == Some(false) {
            errors.push(
                "server.metrics_listen",
                "metrics are off (server.metrics = false): there is nothing to serve there",
            );
        }
        if let (Some(a), Some(b)) = (listen, metrics_listen) {
            if a == b {
                errors.push(
                    "server.metrics_listen",
                    format!("{b} is also server.listen: give metrics a port of their own, or leave it out to serve them beside the API"),
                );
            }
        }
        let api_key = s
            .api_key_env
            .as_deref()
            .and_then(|var| env_value(env, "server.api_key_env", var, &mut errors))
            .map(ApiKey::new);
        if s.admin_reload && s.api_key_env.is_none() {
            errors.push(
                "server.admin_reload",
                "needs server.api_key_env: the endpoint is behind the client key, \
                 so that not everyone who reaches the gateway can reload it",
            );
        }
        if s.body_limit == Some(0) {
            errors.push("server.body_limit", "must be at least 1 byte");
        }
        errors.into_result(ServerSetup {
            listen,
            api_key,
            body_limit: s.body_limit,
            allow_unlisted: s.allow_unlisted_models,
            shutdown_grace: s.shutdown_grace.map(|d| d.get()),
            metrics: s.metrics.unwrap_or(true),
            metrics_auth: s.metrics_auth.unwrap_or(true),
            metrics_listen,
            admin_reload: s.admin_reload,
        })
    }
}
