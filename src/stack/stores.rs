//! The stores of the cooldown and limit layers, where a [`StoreConfig`] says.

use std::fmt;
use std::sync::Arc;

use crate::chat::ConfigError;
use crate::layers::cooldown::{CooldownStore, InMemoryStore};
use crate::layers::limit::{InMemoryUsage, UsageStore};
use crate::store::{Backend, StoreConfig, MEMORY};

/// The stores a [`StoreConfig`] describes, ready to hand to the layers.
#[derive(Clone)]
pub struct Stores {
    /// For [`CooldownBuilder::store`](crate::layers::cooldown::CooldownBuilder::store).
    pub cooldown: Arc<dyn CooldownStore>,
    /// For [`LimitBuilder::store`](crate::layers::limit::LimitBuilder::store).
    pub usage: Arc<dyn UsageStore>,
}

impl Stores {
    /// The stores `[store]` describes, reading `url_env` with `env`; both
    /// share one Redis connection (not opened yet: an unreachable server is
    /// not an error, only a bad setting is).
    pub fn from_config(
        config: &StoreConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Stores, ConfigError> {
        config.backend(env).map(|backend| Stores::on(&backend))
    }

    /// New stores on `backend`.
    pub fn on(backend: &Backend) -> Stores {
        match backend {
            Backend::Memory => Stores {
                cooldown: Arc::new(InMemoryStore::new()),
                usage: Arc::new(InMemoryUsage::new()),
            },
            #[cfg(feature = "redis")]
            Backend::Redis(connection) => Stores {
                cooldown: Arc::new(crate::layers::cooldown::RedisStore::new(connection)),
                usage: Arc::new(crate::layers::limit::RedisUsage::new(connection)),
            },
        }
    }

    /// The stores, and one line for `--check` (without the password).
    pub(crate) fn described(
        config: &StoreConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(Stores, String), ConfigError> {
        let (backend, summary) = config.described(env)?;
        Ok((Stores::on(&backend), summary))
    }

    /// New stores in this process's memory, and their `--check` line.
    pub(crate) fn memory() -> (Stores, String) {
        (Stores::on(&Backend::Memory), MEMORY.to_owned())
    }
}

impl fmt::Debug for Stores {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stores").finish_non_exhaustive()
    }
}
