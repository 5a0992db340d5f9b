//! The clients of the configured providers: one per provider, or one per
//! key behind a [`Credentials`] rotation.

use std::sync::Arc;

use crate::chat::{join_path, ConfigError};
#[cfg(any(feature = "openai", feature = "anthropic"))]
use crate::config::ProviderKind;
use crate::config::{CheckedProvider, ProviderConfig};
use crate::layers::cooldown::CooldownStore;
use crate::providers::credentials::{Credentials, Key};
use crate::rng::SharedRng;
use crate::secret::ApiKey;
use crate::settings::key_path;
use crate::BoxChatService;

/// What every provider's key rotation shares with the stack.
pub(super) struct Keys {
    /// The cooldown's store: keys cool there as `provider#label`.
    pub(super) store: Arc<dyn CooldownStore>,
    /// The stack's draws (seeded by `seed`).
    pub(super) rng: SharedRng,
}

/// A configured provider's service; its problems go under `providers.<name>`.
pub(super) fn build(
    plan: &CheckedProvider,
    keys: &Keys,
    errors: &mut ConfigError,
) -> Option<BoxChatService> {
    let path = format!("providers.{}", key_path(&plan.name));
    if plan.keys.is_empty() {
        let built = client(&plan.config, plan.key.clone());
        return built.map_err(|e| errors.extend(e.under(&path))).ok();
    }
    let before = errors.problems().len();
    let mut rotation = Credentials::builder(plan.name.clone())
        .store(keys.store.clone())
        .rng(keys.rng.clone());
    for c in &plan.keys {
        match client(&plan.config, Some(c.key.clone())) {
            Ok(service) => {
                let key = Key::new(c.label.clone(), service);
                rotation = rotation.key(key.tier(c.tier).weight(c.weight));
            }
            // A key's own problem is named by its label; the others once.
            Err(e) => {
                for p in e.problems() {
                    let at = match p.path.starts_with("api_key") {
                        true => format!("{path}.keys.{}", key_path(&c.label)),
                        false => join_path(&path, &p.path),
                    };
                    let seen =
                        (errors.problems().iter()).any(|q| q.path == at && q.message == p.message);
                    if !seen {
                        errors.push(at, &p.message);
                    }
                }
            }
        }
    }
    if errors.problems().len() > before {
        return None;
    }
    let built = rotation.build().map(BoxChatService::new);
    built.map_err(|e| errors.extend(e.under(&path))).ok()
}

/// One client of `p`'s kind, holding `key`.
#[cfg_attr(
    not(any(feature = "openai", feature = "anthropic")),
    allow(unused_variables)
)]
fn client(p: &ProviderConfig, key: Option<ApiKey>) -> Result<BoxChatService, ConfigError> {
    match p.kind {
        #[cfg(feature = "openai")]
        ProviderKind::OpenAi => {
            let mut b = crate::providers::openai::OpenAi::builder();
            if let Some(url) = &p.base_url {
                b = b.base_url(url);
            }
            if let Some(key) = key {
                b = b.api_key(key);
            }
            for (name, value) in &p.headers {
                b = b.header(name, value);
            }
            b.build().map(BoxChatService::new)
        }
        #[cfg(feature = "openai")]
        ProviderKind::Azure => {
            let mut b = crate::providers::openai::Azure::builder();
            if let Some(url) = &p.endpoint {
                b = b.endpoint(url);
            }
            if let Some(version) = &p.api_version {
                b = b.api_version(version);
            }
            if let Some(key) = key {
                b = b.api_key(key);
            }
            for (name, value) in &p.headers {
                b = b.header(name, value);
            }
            b.build().map(BoxChatService::new)
        }
        #[cfg(feature = "anthropic")]
        ProviderKind::Anthropic => {
            let mut b = crate::providers::anthropic::Anthropic::builder();
            if let Some(url) = &p.base_url {
                b = b.base_url(url);
            }
            if let Some(version) = &p.api_version {
                b = b.version(version);
            }
            if let Some(key) = key {
                b = b.api_key(key);
            }
            for (name, value) in &p.headers {
                b = b.header(name, value);
            }
            b.build().map(BoxChatService::new)
        }
        // Reached only when a client's feature is off.
        #[allow(unreachable_patterns)]
        kind => Err(ConfigError::new(
            "kind",
            format!(
                "provider kind {kind} is not available in this build \
                 (crate features: `openai` for openai and azure, `anthropic` for anthropic)"
            ),
        )),
    }
}
