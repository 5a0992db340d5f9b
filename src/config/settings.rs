//! Checking the global settings of a config: prepended messages, the server.

use std::net::SocketAddr;
use std::time::Duration;

use super::ctx::Ctx;
use crate::chat::{Message, PerModel, Role};
use crate::secret::ApiKey;
use crate::settings::key_path;

/// The server's settings, checked.
#[derive(Debug, Default)]
#[cfg_attr(not(feature = "server"), allow(dead_code))]
pub(crate) struct ServerPlan {
    pub(crate) listen: Option<SocketAddr>,
    pub(crate) api_key: Option<ApiKey>,
    pub(crate) body_limit: Option<usize>,
    pub(crate) allow_unlisted: bool,
    pub(crate) shutdown_grace: Option<Duration>,
}

impl Ctx<'_> {
    pub(crate) fn messages(&mut self) -> PerModel<Vec<Message>> {
        let config = self.config;
        let messages = self.per_model("model_messages", &config.model_messages, Vec::new());
        let check = |ctx: &mut Self, path: &str, list: &[Message]| {
            for (i, m) in list.iter().enumerate() {
                if !matches!(m.role, Role::System | Role::Developer | Role::User) {
                    ctx.errors.push(
                        format!("{path}[{i}]"),
                        format!(
                            "role {} cannot open a conversation; use system, developer or user",
                            m.role
                        ),
                    );
                }
            }
        };
        check(self, "model_messages", messages.default_value());
        for (model, list) in messages.overrides() {
            check(
                self,
                &format!("model_messages.models.{}", key_path(model)),
                list,
            );
        }
        messages
    }

    pub(crate) fn server(&mut self) -> ServerPlan {
        let config = self.config;
        let s = &config.server;
        let listen = s.listen.as_deref().and_then(|addr| match addr.parse() {
            Ok(addr) => Some(addr),
            Err(_) => {
                self.errors.push(
                    "server.listen",
                    format!("{addr:?} is not an address like \"127.0.0.1:8080\""),
                );
                None
            }
        });
        let api_key = s
            .api_key_env
            .as_deref()
            .and_then(|var| self.env_value("server.api_key_env", var))
            .map(ApiKey::new);
        if s.body_limit == Some(0) {
            self.errors
                .push("server.body_limit", "must be at least 1 byte");
        }
        ServerPlan {
            listen,
            api_key,
            body_limit: s.body_limit,
            allow_unlisted: s.allow_unlisted_models,
            shutdown_grace: s.shutdown_grace.map(|d| d.get()),
        }
    }
}
