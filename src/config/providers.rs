//! Checking the providers of a config: endpoints, headers, and the keys
//! read from the environment (names, never values, in the problems).

use super::ctx::Ctx;
use super::types::{ProviderConfig, ProviderKind};
use crate::chat::validate_provider_name;
use crate::providers::credentials::{Credential, CredentialConfig};
use crate::secret::ApiKey;
use crate::settings::key_path;

/// A provider whose client the stack builds.
#[derive(Debug)]
pub(crate) struct CheckedProvider {
    pub(crate) name: String,
    pub(crate) config: ProviderConfig,
    #[cfg_attr(not(feature = "openai"), allow(dead_code))]
    pub(crate) key: Option<ApiKey>,
    /// Several keys (`keys`), rotated; empty for one key or none.
    #[cfg_attr(not(feature = "openai"), allow(dead_code))]
    pub(crate) keys: Vec<Credential>,
}

impl Ctx<'_> {
    /// Checks each provider; plans a client for those not supplied in code.
    pub(crate) fn check_providers(&mut self) -> Vec<CheckedProvider> {
        let mut plans = Vec::new();
        let config = self.config;
        for (name, p) in &config.providers {
            let path = format!("providers.{}", key_path(name));
            if let Err(e) = validate_provider_name(name) {
                self.errors.push(&path, e);
            } else if name.starts_with('_') {
                self.errors
                    .push(&path, "provider names starting with '_' are reserved");
            }
            if self.supplied.contains(name) {
                continue;
            }
            let before = self.errors.problems().len();
            self.check_endpoint(&path, p);
            let key = p.api_key_env.as_deref().and_then(|var| {
                self.env_value(&format!("{path}.api_key_env"), var)
                    .map(ApiKey::new)
            });
            let keys = self.keys(&path, p);
            for (header, value) in &p.headers {
                let at = format!("{path}.headers.{}", key_path(header));
                if http::HeaderName::try_from(header.as_str()).is_err() {
                    self.errors.push(&at, "not a valid HTTP header name");
                } else if http::HeaderValue::try_from(value.as_str()).is_err() {
                    // The value is not echoed: it may be a credential.
                    self.errors
                        .push(&at, "the value contains characters not allowed in a header");
                }
            }
            // A provider with problems gets no client: they are reported once.
            if self.errors.problems().len() > before {
                continue;
            }
            plans.push(CheckedProvider {
                name: name.clone(),
                config: p.clone(),
                key,
                keys,
            });
        }
        plans
    }

    /// Reads the keys of `keys` from the environment (names, never values,
    /// in the problems).
    fn keys(&mut self, path: &str, p: &ProviderConfig) -> Vec<Credential> {
        let Some(list) = &p.keys else {
            return Vec::new();
        };
        let at = format!("{path}.keys");
        if p.api_key_env.is_some() {
            self.errors.push(
                &at,
                "give either `api_key_env` (one key) or `keys` (several), not both",
            );
        }
        let env = self.env;
        CredentialConfig::resolve_all_with(list, &at, env).unwrap_or_else(|e| {
            self.errors.extend(e);
            Vec::new()
        })
    }

    fn check_endpoint(&mut self, path: &str, p: &ProviderConfig) {
        let azure = p.kind == ProviderKind::Azure;
        if azure && p.base_url.is_some() {
            self.errors.push(
                format!("{path}.base_url"),
                "an azure provider takes `endpoint` (https://<resource>.openai.azure.com), not `base_url`",
            );
        }
        if !azure && p.endpoint.is_some() {
            self.errors.push(
                format!("{path}.endpoint"),
                format!(
                    "only azure providers take `endpoint`; a {} provider takes `base_url`",
                    p.kind
                ),
            );
        }
        if p.kind == ProviderKind::OpenAi && p.api_version.is_some() {
            self.errors.push(
                format!("{path}.api_version"),
                "only azure and anthropic providers take `api_version`",
            );
        }
        if azure {
            match &p.endpoint {
                None => self.errors.push(
                    format!("{path}.endpoint"),
                    "an azure provider needs `endpoint` (https://<resource>.openai.azure.com)",
                ),
                Some(url) => check_url(self, &format!("{path}.endpoint"), url),
            }
        } else if let Some(url) = &p.base_url {
            check_url(self, &format!("{path}.base_url"), url);
        }
    }
}

fn check_url(ctx: &mut Ctx<'_>, path: &str, url: &str) {
    match url.parse::<http::Uri>() {
        Ok(uri)
            if matches!(uri.scheme_str(), Some("http" | "https"))
                && uri.host().is_some_and(|h| !h.is_empty()) => {}
        _ => ctx.errors.push(
            path,
            format!("{url:?} is not an http(s) URL (e.g. \"https://api.openai.com/v1\")"),
        ),
    }
}
