//! Where shared state lives: in this process's memory, or on Redis for several processes.
//!
//! The [`Cooldown`](crate::Cooldown) layer keeps breakers in a
//! [`CooldownStore`], the balance layer keeps usage counts in a
//! [`UsageStore`]. Both are in memory by default. With several gateway
//! replicas, point them at one Redis ([`RedisConnection`], feature `redis`):
//! a breaker tripped by one replica is open for all, and limits hold across
//! all of them. A Redis outage never fails a call: each operation has a time
//! budget and falls back to a local view.
//!
//! [`StoreConfig`] is the plain-data form, the `[store]` section of a
//! [`Config`](crate::Config); [`Stores::from_config`] builds the stores it
//! describes.
//!
//! # Example
//!
//! ```
//! use llm_fallback::store::{StoreConfig, StoreKind, Stores};
//! use llm_fallback::{CooldownLayer, WeightedBalanceLayer};
//!
//! let config: StoreConfig = serde_json::from_str(r#"{"type": "memory"}"#).unwrap();
//! let redis: StoreConfig = serde_json::from_str(
//!     r#"{"type": "redis", "url": "redis://127.0.0.1:6379", "prefix": "gw", "op_timeout": "5ms"}"#,
//! ).unwrap();
//! assert_eq!(redis.kind, StoreKind::Redis);
//! let typo = r#"{"type": "redis", "url": "redis://127.0.0.1:6379", "op_timeout_ms": 5}"#;
//! assert!(serde_json::from_str::<StoreConfig>(typo).is_err());
//! let stores = Stores::from_config(&config, &|var| std::env::var(var).ok()).unwrap();
//! let cooldown = CooldownLayer::builder()
//!     .store(stores.cooldown.clone())
//!     .build()
//!     .unwrap();
//! let balance = WeightedBalanceLayer::builder()
//!     .route("gpt-4o", [("azure/gpt-4o", 1.0), ("openai/gpt-4o", 1.0)])
//!     .shared_usage_store(stores.usage.clone())
//!     .health(cooldown.health())
//!     .build()
//!     .unwrap();
//! # let _ = balance;
//! ```

use std::fmt;
use std::sync::Arc;

use crate::layers::cooldown::CooldownStore;
use crate::layers::usage::UsageStore;

mod config;
#[cfg(feature = "redis")]
mod redis_link;

pub use self::config::{StoreConfig, StoreKind};

#[cfg(feature = "redis")]
pub(crate) use self::redis_link::Link;
#[cfg(feature = "redis")]
pub use self::redis_link::{RedisConnection, RedisConnectionBuilder};

/// The stores a [`StoreConfig`] describes, ready to hand to the layers.
#[derive(Clone)]
pub struct Stores {
    /// For [`CooldownBuilder::store`](crate::layers::cooldown::CooldownBuilder::store).
    pub cooldown: Arc<dyn CooldownStore>,
    /// For [`BalanceBuilder::shared_usage_store`](crate::BalanceBuilder::shared_usage_store).
    pub usage: Arc<dyn UsageStore>,
}

impl fmt::Debug for Stores {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stores").finish_non_exhaustive()
    }
}
