//! The `[server]` section of a config file (the sections of the layers
//! live with them: `layers::<name>::config`).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::secret::EnvName;
use crate::settings::HumanDuration;

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
