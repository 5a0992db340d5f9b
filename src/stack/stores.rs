//! The stores of the cooldown and limit layers, built from a [`StoreConfig`].

use std::fmt;
use std::sync::Arc;

use crate::chat::ConfigError;
use crate::layers::cooldown::{CooldownStore, InMemoryStore};
use crate::layers::limit::{InMemoryUsage, UsageStore};
#[cfg(feature = "redis")]
use crate::store::RedisConnection;
use crate::store::StoreConfig;

/// The stores a [`StoreConfig`] describes, ready to hand to the layers.
#[derive(Clone)]
pub struct Stores {
    /// For [`CooldownBuilder::shared_store`](crate::layers::cooldown::CooldownBuilder::shared_store).
    pub cooldown: Arc<dyn CooldownStore>,
    /// For [`LimitBuilder::store`](crate::layers::limit::LimitBuilder::store).
    pub usage: Arc<dyn UsageStore>,
}

impl Stores {
    /// Both stores in this process's memory.
    pub fn memory() -> Stores {
        Stores {
            cooldown: Arc::new(InMemoryStore::new()),
            usage: Arc::new(InMemoryUsage::new()),
        }
    }

    /// Both stores on one Redis connection.
    #[cfg(feature = "redis")]
    pub fn redis(connection: &RedisConnection) -> Stores {
        Stores {
            cooldown: Arc::new(crate::layers::cooldown::RedisStore::new(connection)),
            usage: Arc::new(crate::layers::limit::RedisUsage::new(connection)),
        }
    }

    /// Builds the stores; both share one connection for Redis (not opened
    /// yet: an unreachable server is not an error, only a bad URL is).
    pub fn from_config(config: &StoreConfig) -> Result<Stores, ConfigError> {
        #[cfg(feature = "redis")]
        return Ok(match config.connection()? {
            Some(connection) => Stores::redis(&connection),
            None => Stores::memory(),
        });
        #[cfg(not(feature = "redis"))]
        match config {
            StoreConfig::Memory => Ok(Stores::memory()),
            StoreConfig::Redis { .. } => {
                let mut errors = ConfigError::default();
                errors.push("store", "this build has no Redis support (feature `redis`)");
                Err(errors)
            }
        }
    }
}

impl fmt::Debug for Stores {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stores").finish_non_exhaustive()
    }
}
