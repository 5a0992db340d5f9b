//! What outlives one [`Stack`]: the stores that hold breakers, usage
//! windows and key cooldowns (and their Redis connection), handed from a
//! stack to the next one built from a reloaded config.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use super::{Stack, Stores};
use crate::config::{CheckedProvider, Config};
use crate::layers::hedge::LearnedDelay;
use crate::store::StoreConfig;

/// State kept across the stacks built with it: build each stack with
/// [`StackBuilder::state`](super::StackBuilder::state), and
/// [`commit`](Self::commit) the one put to use.
///
/// What survives, by key:
///
/// | state | kept in | key | survives a reload when |
/// |---|---|---|---|
/// | breakers | the cooldown store | model id `provider/model` | `[store]` and the model's provider are unchanged |
/// | key cooldowns | the cooldown store | `provider#label` | the same |
/// | usage windows (`[limits]`) | the usage store | model id | the same |
/// | learned hedge delays | the hedge of `[fallback.hedge]` | model id | `learned`'s settings and the model's provider are unchanged |
/// | Redis connection | both stores | — | `[store]` is unchanged |
///
/// A provider whose settings or key changed (kind, URL, headers, a key's
/// value, label, tier or weight) is another endpoint: when its stack is
/// committed, what this process kept about its models and keys is dropped,
/// so it starts closed and uncounted (state on Redis, which other replicas
/// may still use, expires by itself). A provider removed is dropped too. A
/// changed `[store]` means new stores: everything starts afresh. Stores
/// given in code ([`StackBuilder::cooldown_store`](super::StackBuilder::cooldown_store),
/// [`usage_store`](super::StackBuilder::usage_store)) are used as given.
///
/// Not kept: the adaptive throttle's windows (recent calls per model,
/// inside the cooldown layer) and the hedge budget; a reload starts them
/// again.
#[derive(Clone, Default)]
pub struct StackState {
    inner: Arc<Mutex<Committed>>,
}

/// What the stack last committed used.
#[derive(Default)]
struct Committed {
    stores: Option<(StoreConfig, Stores)>,
    providers: BTreeMap<String, u64>,
    learned: Option<Arc<LearnedDelay>>,
}

impl StackState {
    /// Empty state: the first stack built with it makes its own stores.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Committed> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The committed stores, if they were made for `config`.
    pub(super) fn stores_for(&self, config: &StoreConfig) -> Option<Stores> {
        let committed = self.lock();
        let (made_for, stores) = committed.stores.as_ref()?;
        (made_for == config).then(|| stores.clone())
    }

    /// The committed stack's learned hedge delays, if it learns.
    pub(super) fn learned(&self) -> Option<Arc<LearnedDelay>> {
        self.lock().learned.clone()
    }

    /// Records `stack` as the one in use: the next stack built with this
    /// state reuses its stores. Drops, from those stores, what this process
    /// kept about the providers that changed or went away since the last
    /// commit, and returns their names.
    pub fn commit(&self, stack: &Stack) -> Vec<String> {
        let info = &stack.info;
        let mut committed = self.lock();
        let mut reset = Vec::new();
        for (name, fingerprint) in &committed.providers {
            if info.fingerprints.get(name) != Some(fingerprint) {
                info.stores.cooldown.forget_provider(name);
                info.stores.usage.forget_provider(name);
                if let Some(learned) = &info.learned {
                    learned.forget_provider(name);
                }
                reset.push(name.clone());
            }
        }
        committed.providers = info.fingerprints.clone();
        committed.learned = info.learned.clone();
        committed.stores = Some((info.store_config.clone(), info.stores.clone()));
        reset
    }
}

impl fmt::Debug for StackState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let committed = self.lock();
        f.debug_struct("StackState")
            .field("stores", &committed.stores.is_some())
            .field("providers", &committed.providers.keys())
            .finish()
    }
}

/// FNV-1a, 64 bits: stable across runs and builds (the standard hasher
/// promises neither), and enough to tell configs apart.
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
        // A separator, so ("ab", "c") and ("a", "bc") differ.
        self.0 = self.0.rotate_left(5) ^ 0xff;
    }
}

/// The config's hash, 16 hex digits: of its settings as parsed (comments
/// and layout do not count), not of the keys its variables hold.
pub(crate) fn config_hash(config: &Config) -> String {
    let mut h = Fnv::new();
    h.write(&serde_json::to_vec(config).unwrap_or_default());
    format!("{:016x}", h.0)
}

/// The hash of a file's bytes, to tell whether it changed.
#[cfg(feature = "reload")]
pub(super) fn bytes_hash(bytes: &[u8]) -> u64 {
    let mut h = Fnv::new();
    h.write(bytes);
    h.0
}

/// What identifies a provider's endpoint: its settings and its keys'
/// values (hashed, never kept or shown).
pub(super) fn fingerprint(p: &CheckedProvider) -> u64 {
    let mut h = Fnv::new();
    h.write(&serde_json::to_vec(&p.config).unwrap_or_default());
    h.write(p.key.as_ref().map_or("", |k| k.expose()).as_bytes());
    for c in &p.keys {
        h.write(c.label.as_bytes());
        h.write(&c.tier.to_le_bytes());
        h.write(&c.weight.to_le_bytes());
        h.write(c.key.expose().as_bytes());
    }
    h.0
}

#[cfg(all(test, feature = "openai"))]
mod tests {
    use std::time::Duration;

    use tokio::time::Instant;

    use super::*;
    use crate::layers::cooldown::{Admission, BreakerSettings, Verdict};

    /// Two providers, a route over both, a hedge that learns after one call.
    fn config(a_url: &str, learned_window: u32) -> Config {
        Config::from_json_str(&format!(
            r#"{{
            "providers": {{
                "a": {{ "kind": "openai", "base_url": "{a_url}", "api_key_env": "KEY" }},
                "b": {{ "kind": "openai", "base_url": "http://127.0.0.1:2", "api_key_env": "KEY" }}
            }},
            "routes": {{ "r": ["a/m", "b/m"] }},
            "fallback": {{ "hedge": {{ "delay": "1s",
                "learned": {{ "min_observations": 1, "window": {learned_window} }} }} }}
        }}"#
        ))
        .unwrap()
    }

    fn build(config: Config, state: &StackState) -> Stack {
        let builder = Stack::builder().config(config).state(state.clone());
        builder.env(|_| Some("sk-test".to_owned())).build().unwrap()
    }

    /// Trips `model`'s breaker in the stack's store.
    async fn trip(stack: &Stack, model: &str) {
        let store = &stack.info.stores.cooldown;
        let Admission::Admit(permit) = store.admit(model, false, Instant::now()).await else {
            panic!("{model} is closed at first");
        };
        let settings = BreakerSettings::default();
        let verdict = Verdict::Trip(Some(Duration::from_secs(3600)));
        let _ = store
            .record(model, permit, verdict, &settings, Instant::now())
            .await;
    }

    fn learned(stack: &Stack) -> &Arc<LearnedDelay> {
        stack.info.learned.as_ref().expect("the hedge learns")
    }

    #[tokio::test]
    async fn unchanged_models_keep_their_state_and_a_changed_provider_loses_its_own() {
        let state = StackState::new();
        let first = build(config("http://127.0.0.1:1", 200), &state);
        assert!(state.commit(&first).is_empty());
        for model in ["a/m", "b/m"] {
            trip(&first, model).await;
            learned(&first).observe(model, Duration::from_millis(300));
        }

        // Same config: the same stores and learned delays, nothing reset.
        let second = build(config("http://127.0.0.1:1", 200), &state);
        assert!(Arc::ptr_eq(learned(&first), learned(&second)));
        assert!(state.commit(&second).is_empty());
        assert!(!second.health().is_available("a/m"));
        assert!(learned(&second).delay("a/m").is_some());

        // Provider `a` moves: its model starts afresh, `b`'s keeps its state.
        let third = build(config("http://127.0.0.1:3", 200), &state);
        assert_eq!(state.commit(&third), ["a"]);
        assert!(third.health().is_available("a/m"));
        assert_eq!(learned(&third).delay("a/m"), None);
        assert!(!third.health().is_available("b/m"));
        assert!(learned(&third).delay("b/m").is_some());
    }

    #[tokio::test]
    async fn learned_delays_with_new_settings_start_afresh() {
        let state = StackState::new();
        let first = build(config("http://127.0.0.1:1", 200), &state);
        state.commit(&first);
        learned(&first).observe("b/m", Duration::from_millis(300));
        let second = build(config("http://127.0.0.1:1", 50), &state);
        assert!(!Arc::ptr_eq(learned(&first), learned(&second)));
        assert_eq!(learned(&second).delay("b/m"), None);
    }

    #[cfg(feature = "redis")]
    #[tokio::test]
    async fn the_redis_stores_and_their_connection_are_kept_while_store_is_unchanged() {
        let with_store = |prefix: &str| {
            let mut config = config("http://127.0.0.1:1", 200);
            let store = format!(
                r#"{{"type": "redis", "url": "redis://127.0.0.1:6379", "prefix": "{prefix}"}}"#
            );
            config.store = serde_json::from_str(&store).unwrap();
            config
        };
        let state = StackState::new();
        let first = build(with_store("a"), &state);
        state.commit(&first);
        let same = build(with_store("a"), &state);
        let (old, new) = (&first.info.stores, &same.info.stores);
        assert!(Arc::ptr_eq(&old.cooldown, &new.cooldown));
        assert!(Arc::ptr_eq(&old.usage, &new.usage));
        state.commit(&same);
        // Another prefix is other state: new stores.
        let moved = build(with_store("b"), &state);
        assert!(!Arc::ptr_eq(&old.cooldown, &moved.info.stores.cooldown));
        assert!(!Arc::ptr_eq(&old.usage, &moved.info.stores.usage));
    }

    #[test]
    fn the_config_hash_ignores_layout_and_follows_settings() {
        let a = Config::from_toml_str("seed = 1\n[retry]\nmax_retries = 2").unwrap();
        let b = Config::from_toml_str("# a comment\nseed   = 1\n\n[retry]\nmax_retries=2").unwrap();
        let c = Config::from_toml_str("seed = 1\n[retry]\nmax_retries = 3").unwrap();
        assert_eq!(config_hash(&a), config_hash(&b));
        assert_ne!(config_hash(&a), config_hash(&c));
        assert_eq!(config_hash(&a).len(), 16);
    }
}
