//! Configuring a [`Credentials`] service: its keys, how calls spread, which failures rotate.

use std::fmt;
use std::ops::Range;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

use super::config::{validate_label, Credential};
use super::plan::{KeyMeta, Pick};
use super::policy::RotationPolicy;
use super::{Credentials, Shared};
use crate::chat::{validate_provider_name, ConfigError, ErrorKind};
use crate::layers::cooldown::{CooldownStore, InMemoryStore};
use crate::rng::SharedRng;
use crate::secret::ApiKey;

/// One key's client, with the label logs name it by, its tier and weight.
///
/// ```
/// use llm_fallback::providers::credentials::Key;
/// use llm_fallback::providers::openai::OpenAi;
///
/// let client = OpenAi::builder().api_key("sk-free").build().unwrap();
/// let key = Key::new("free", client).tier(1).weight(2);
/// # let _ = key;
/// ```
pub struct Key<S> {
    label: String,
    tier: u32,
    weight: u32,
    service: S,
}

impl<S> Key<S> {
    /// `service` (a client holding one key) named `label`, tier 0, weight 1.
    pub fn new(label: impl Into<String>, service: S) -> Self {
        Key {
            label: label.into(),
            tier: 0,
            weight: 1,
            service,
        }
    }

    /// Its tier: keys of tier 1 are used only when no tier 0 key is
    /// available. Default 0.
    pub fn tier(mut self, tier: u32) -> Self {
        self.tier = tier;
        self
    }

    /// Its share of the calls within its tier (at least 1). Default 1.
    pub fn weight(mut self, weight: u32) -> Self {
        self.weight = weight;
        self
    }
}

impl<S> fmt::Debug for Key<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("label", &self.label)
            .field("tier", &self.tier)
            .field("weight", &self.weight)
            .finish_non_exhaustive()
    }
}

/// Configures [`Credentials`]; every problem is reported by [`build`](Self::build).
///
/// | setting | default |
/// |---|---|
/// | spread within a tier | weighted random draw ([`rng`](Self::rng)), or [`round_robin`](Self::round_robin) |
/// | rotating kinds, and the rest of a key without `Retry-After` | `RateLimited` 10 s, `Auth` 5 min |
/// | [`quota_cooldown`](Self::quota_cooldown) (`insufficient_quota`) | 5 min |
/// | [`max_retry_after`](Self::max_retry_after) | 10 min |
/// | [`store`](Self::store) | a new [`InMemoryStore`] |
pub struct CredentialsBuilder<S> {
    provider: String,
    keys: Vec<Key<S>>,
    policy: RotationPolicy,
    pick: Option<Pick>,
    store: Option<Arc<dyn CooldownStore>>,
    errors: ConfigError,
}

impl<S> CredentialsBuilder<S> {
    pub(super) fn new(provider: String) -> Self {
        CredentialsBuilder {
            provider,
            keys: Vec::new(),
            policy: RotationPolicy::default(),
            pick: None,
            store: None,
            errors: ConfigError::default(),
        }
    }

    /// Adds a key's client.
    pub fn key(mut self, key: Key<S>) -> Self {
        self.keys.push(key);
        self
    }

    /// Adds one client per credential (e.g. from
    /// [`CredentialConfig::resolve_all`](super::CredentialConfig::resolve_all)),
    /// built by `make` from the key. Build errors are reported under the label.
    pub fn credentials(
        mut self,
        credentials: impl IntoIterator<Item = Credential>,
        mut make: impl FnMut(ApiKey) -> Result<S, ConfigError>,
    ) -> Self {
        for c in credentials {
            match make(c.key) {
                Ok(service) => self
                    .keys
                    .push(Key::new(c.label, service).tier(c.tier).weight(c.weight)),
                Err(e) => {
                    for p in e.problems() {
                        let path = format!("credentials.{}.{}.{}", self.provider, c.label, p.path);
                        self.errors.push(path, p.message.clone());
                    }
                }
            }
        }
        self
    }

    /// Spreads calls within a tier by weighted draws from `rng` (seed it in tests).
    pub fn rng(mut self, rng: SharedRng) -> Self {
        self.pick = Some(Pick::Weighted(rng));
        self
    }

    /// Spreads calls within a tier in turn: each request starts one key
    /// further (weights are ignored).
    pub fn round_robin(mut self) -> Self {
        self.pick = Some(Pick::RoundRobin(AtomicUsize::new(0)));
        self
    }

    /// Moves a request to the next key when a key fails with `kind`, resting
    /// that key for `rest` (or for the provider's `Retry-After`, when given).
    pub fn rotate_on(mut self, kind: ErrorKind, rest: Duration) -> Self {
        self.policy.set(kind, rest);
        self
    }

    /// Returns failures of `kind` as they are, without trying another key.
    pub fn stop_rotating_on(mut self, kind: ErrorKind) -> Self {
        self.policy.rotate_on.retain(|(k, _)| *k != kind);
        self
    }

    /// How long a key out of quota (`insufficient_quota`) rests.
    pub fn quota_cooldown(mut self, rest: Duration) -> Self {
        self.policy.quota_cooldown = rest;
        self
    }

    /// The longest a provider's `Retry-After` rests a key.
    pub fn max_retry_after(mut self, max: Duration) -> Self {
        self.policy.max_retry_after = max;
        self
    }

    /// Keeps the keys' breakers in `store` instead of a new [`InMemoryStore`]:
    /// one of their own, or one shared (e.g. the
    /// [`CooldownLayer`](crate::CooldownLayer)'s, or Redis for several
    /// processes). Breaker ids are `provider#label`, apart from model ids.
    pub fn store(mut self, store: Arc<dyn CooldownStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// The service, or every problem found.
    pub fn build(self) -> Result<Credentials<S>, ConfigError> {
        let mut errors = self.errors;
        let base = format!("credentials.{}", self.provider);
        if let Err(e) = validate_provider_name(&self.provider) {
            errors.push(&base, e);
        }
        if self.keys.is_empty() && errors.is_empty() {
            errors.push(&base, "no key is configured");
        }
        for (i, key) in self.keys.iter().enumerate() {
            let path = format!("{base}.{}", key.label);
            if let Err(e) = validate_label(&key.label) {
                errors.push(format!("{base}[{i}].label"), e);
            } else if self.keys[..i].iter().any(|k| k.label == key.label) {
                errors.push(&path, format!("the label {:?} is used twice", key.label));
            }
            if key.weight == 0 {
                errors.push(format!("{path}.weight"), "must be at least 1");
            }
        }
        let policy = self.policy;
        for (kind, rest) in &policy.rotate_on {
            if rest.is_zero() {
                errors.push(
                    format!("{base}.rotate_on.{kind}"),
                    "the rest must be longer than zero",
                );
            }
        }
        if policy.quota_cooldown.is_zero() {
            errors.push(format!("{base}.quota_cooldown"), "must be longer than zero");
        }
        if policy.max_retry_after.is_zero() {
            errors.push(
                format!("{base}.max_retry_after"),
                "must be longer than zero",
            );
        }
        let mut keys = self.keys;
        keys.sort_by_key(|k| k.tier);
        let meta: Vec<KeyMeta> = (keys.iter())
            .map(|k| KeyMeta {
                label: k.label.clone(),
                id: format!("{}#{}", self.provider, k.label),
                tier: k.tier,
                weight: k.weight,
            })
            .collect();
        let tiers = tier_ranges(&meta);
        let shared = Shared {
            provider: self.provider,
            meta,
            services: keys.into_iter().map(|k| k.service).collect(),
            tiers,
            pick: self
                .pick
                .unwrap_or_else(|| Pick::Weighted(SharedRng::from_os())),
            policy,
            store: self.store.unwrap_or_else(|| Arc::new(InMemoryStore::new())),
        };
        errors.into_result(Credentials {
            shared: Arc::new(shared),
        })
    }
}

/// The index ranges of `keys` (sorted by tier) sharing a tier.
fn tier_ranges(keys: &[KeyMeta]) -> Vec<Range<usize>> {
    let mut ranges: Vec<Range<usize>> = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        match ranges.last_mut() {
            Some(last) if keys[last.start].tier == key.tier => last.end = i + 1,
            _ => ranges.push(i..i + 1),
        }
    }
    ranges
}

impl<S> fmt::Debug for CredentialsBuilder<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialsBuilder")
            .field("provider", &self.provider)
            .field("keys", &self.keys)
            .field("policy", &self.policy)
            .field("pick", &self.pick)
            .finish_non_exhaustive()
    }
}
