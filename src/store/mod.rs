//! Where shared state lives: in this process's memory, or on Redis for several processes.
//!
//! The plumbing the layers' stores share, and nothing of the layers
//! themselves: [`StoreFuture`], the answer of a store operation (ready at
//! once in memory, later over the network), and, with the feature `redis`,
//! one [`RedisConnection`] with the time budget and outage handling every
//! Redis operation goes through. The [`Cooldown`](crate::Cooldown) layer
//! keeps breakers in a store of its own kind, the [`Limit`](crate::Limit)
//! layer keeps usage counts in another; both are in memory by default. With
//! several gateway replicas, point them at one Redis: a breaker tripped by
//! one replica is open for all, and limits hold across all of them. A Redis
//! outage never fails a call: each operation has a time budget and falls
//! back to a local view.
//!
//! [`StoreConfig`] is the plain-data form, for config files; a gateway
//! [`Config`](crate::Config) has its own `[store]` section
//! ([`StoreSettings`](crate::config::StoreSettings): durations like the rest of
//! the file, and the URL from an environment variable).
//! [`Stores::from_config`](crate::stack::Stores::from_config) builds the
//! stores of both layers from it.
//!
//! # Example
//!
//! ```
//! use llm_fallback::stack::Stores;
//! use llm_fallback::store::StoreConfig;
//! use llm_fallback::{CooldownLayer, LimitLayer, Limits, WeightedBalanceLayer};
//!
//! let config: StoreConfig = serde_json::from_str(r#"{"type": "memory"}"#).unwrap();
//! let redis: StoreConfig = serde_json::from_str(
//!     r#"{"type": "redis", "url": "redis://127.0.0.1:6379", "prefix": "gw", "op_timeout_ms": 5}"#,
//! ).unwrap();
//! assert!(matches!(redis, StoreConfig::Redis { .. }));
//! let typo = r#"{"type": "redis", "url": "redis://127.0.0.1:6379", "op_timeout": 5}"#;
//! assert!(serde_json::from_str::<StoreConfig>(typo).is_err());
//! let stores = Stores::from_config(&config).unwrap();
//! let cooldown = CooldownLayer::builder()
//!     .shared_store(stores.cooldown.clone())
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
//!     .with_health(cooldown.health())
//!     .build()
//!     .unwrap();
//! # let _ = balance;
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};

#[cfg(feature = "redis")]
use crate::chat::ConfigError;

mod future;
#[cfg(feature = "redis")]
mod redis_link;

pub use self::future::StoreFuture;
#[cfg(feature = "redis")]
pub(crate) use self::redis_link::Link;
#[cfg(feature = "redis")]
pub use self::redis_link::{RedisConnection, RedisConnectionBuilder};

/// Which store to keep shared state in, as plain data (serde).
///
/// `{"type": "memory"}` (the default), or
/// `{"type": "redis", "url": "redis://127.0.0.1:6379", "prefix": "gw", "op_timeout_ms": 5}`
/// (`prefix` and `op_timeout_ms` optional: `llm-fallback` and 5 ms).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum StoreConfig {
    /// In this process's memory.
    #[default]
    Memory,
    /// On a Redis server, shared by every process with the same URL and prefix.
    Redis {
        /// `redis://host:port/db`.
        url: String,
        /// The key prefix (default `llm-fallback`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prefix: Option<String>,
        /// The time budget of one store operation, in ms (default 5).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        op_timeout_ms: Option<u64>,
    },
}

impl StoreConfig {
    /// The Redis connection this describes (`None` for memory), not opened
    /// yet: an unreachable server is not an error, only a bad URL is.
    #[cfg(feature = "redis")]
    pub fn connection(&self) -> Result<Option<RedisConnection>, ConfigError> {
        let StoreConfig::Redis {
            url,
            prefix,
            op_timeout_ms,
        } = self
        else {
            return Ok(None);
        };
        let mut builder = RedisConnection::builder(url.clone());
        if let Some(prefix) = prefix {
            builder = builder.prefix(prefix.clone());
        }
        if let Some(ms) = op_timeout_ms {
            builder = builder.op_timeout(std::time::Duration::from_millis(*ms));
        }
        builder.build().map(Some)
    }
}

impl fmt::Debug for StoreConfig {
    // The URL may hold a password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreConfig::Memory => f.write_str("Memory"),
            StoreConfig::Redis {
                url,
                prefix,
                op_timeout_ms,
            } => {
                let host = url.rsplit_once('@').map_or(url.as_str(), |(_, host)| host);
                f.debug_struct("Redis")
                    .field("host", &host)
                    .field("prefix", prefix)
                    .field("op_timeout_ms", op_timeout_ms)
                    .finish()
            }
        }
    }
}
