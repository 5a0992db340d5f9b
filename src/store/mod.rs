//! Where shared state lives: in this process's memory, or on Redis for several processes.
//!
//! The plumbing the layers' stores share, and nothing of the layers
//! themselves: [`StoreFuture`], the answer of a store operation (ready at
//! once in memory, later over the network); with the feature `redis`, one
//! [`RedisConnection`] with the time budget and outage handling every Redis
//! operation goes through; and [`StoreConfig`], the `[store]` section of a
//! [`Config`](crate::Config), which says where ([`Backend`]).
//!
//! The [`Cooldown`](crate::Cooldown) layer keeps breakers in a store of its
//! own kind, the [`Limit`](crate::Limit) layer keeps usage counts in
//! another; both are in memory by default. With several gateway replicas,
//! point them at one Redis: a breaker tripped by one replica is open for
//! all, and limits hold across all of them. A Redis outage never fails a
//! call: each operation has a time budget and falls back to a local view.
//! [`Stores::from_config`](crate::stack::Stores::from_config) builds both
//! layers' stores from a `[store]` section.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use llm_fallback::stack::Stores;
//! use llm_fallback::store::{StoreConfig, StoreKind};
//! use llm_fallback::{CooldownLayer, LimitLayer, WeightedBalanceLayer};
//! use llm_fallback::layers::limit::Limits;
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
//! let limit = LimitLayer::builder()
//!     .limits("azure/gpt-4o", Limits::default().with_rpm(600))
//!     .store(stores.usage.clone())
//!     .build()
//!     .unwrap();
//! let balance = WeightedBalanceLayer::builder()
//!     .route("gpt-4o", [("azure/gpt-4o", 1.0), ("openai/gpt-4o", 1.0)])
//!     .usage(limit.usage())
//!     .health(cooldown.health())
//!     .build()
//!     .unwrap();
//! # let _ = balance;
//! ```

mod config;
mod future;
#[cfg(feature = "redis")]
mod redis_link;

#[cfg(feature = "toml")]
pub(crate) use self::config::redact_url;
pub(crate) use self::config::MEMORY;

/// Whether a store key belongs to `provider`: one of its models
/// (`provider/model`) or of its keys (`provider#label`).
pub(crate) fn of_provider(id: &str, provider: &str) -> bool {
    id.strip_prefix(provider)
        .is_some_and(|rest| rest.starts_with('/') || rest.starts_with('#'))
}
pub use self::config::{Backend, StoreConfig, StoreKind};
pub use self::future::StoreFuture;
#[cfg(feature = "redis")]
pub(crate) use self::redis_link::Link;
#[cfg(feature = "redis")]
pub use self::redis_link::{RedisConnection, RedisConnectionBuilder};
