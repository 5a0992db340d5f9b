//! What a server serves, swapped whole on a reload: the stack, the models
//! and routes it lists, the health view, and which config generation they
//! come from.
//!
//! Each request loads the active generation once, at its start, and keeps
//! that snapshot (an `Arc`) to its end: a call or stream in flight finishes
//! on the stack it started on, while new requests use the new one at once.

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::SystemTime;

use super::info::ModelEntry;
use crate::layers::health::Health;
use crate::{BoxChatService, ConfigError};

/// Which config a server serves: a number counting the configs it has
/// served (1 for the one it started with), a hash of that config, and
/// when it was loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Generation {
    /// 1 at start, one more on each successful reload.
    pub number: u64,
    /// A hash of the config (16 hex digits; empty when none was given).
    pub hash: String,
    /// When this generation started serving.
    pub loaded_at: SystemTime,
}

impl Generation {
    /// The first generation, of a config whose hash is `hash`.
    pub(crate) fn first(hash: String) -> Self {
        Generation {
            number: 1,
            hash,
            loaded_at: SystemTime::now(),
        }
    }

    /// Seconds since the Unix epoch at which it was loaded.
    pub fn loaded_at_unix(&self) -> u64 {
        (self.loaded_at.duration_since(SystemTime::UNIX_EPOCH)).map_or(0, |d| d.as_secs())
    }
}

/// One generation of what the handlers serve.
pub(crate) struct Active {
    pub(crate) stack: BoxChatService,
    pub(crate) models: Arc<[ModelEntry]>,
    pub(crate) listed: HashSet<String>,
    pub(crate) only_listed: bool,
    pub(crate) routes: BTreeMap<String, Vec<String>>,
    pub(crate) health: Health,
    pub(crate) generation: Generation,
}

impl Active {
    /// Whether a request for `model` goes to the stack.
    pub(crate) fn serves(&self, model: &str) -> bool {
        !self.only_listed || self.listed.contains(model)
    }

    /// Every id a metric label may take: listed models, aliases, candidates.
    pub(crate) fn named(&self) -> impl Iterator<Item = &str> {
        let candidates = self.routes.values().flatten().map(String::as_str);
        self.listed.iter().map(String::as_str).chain(candidates)
    }
}

/// The future a reload callback returns: the new generation, or every
/// problem of the config that was refused.
pub type ReloadFuture = Pin<Box<dyn Future<Output = Result<Generation, ConfigError>> + Send>>;

/// What `POST /admin/reload` calls.
pub(crate) type ReloadFn = Arc<dyn Fn() -> ReloadFuture + Send + Sync>;
