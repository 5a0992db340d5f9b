//! [`LiveHandle`]: swaps the generation a running server serves.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwap;

use super::live::{Active, Generation};
use super::metrics::Metrics;
use crate::ConfigError;

/// A handle on a running server's active generation: swap in a new stack
/// (with the models, routes and health it serves) while the server runs.
/// Cheap to clone. Made by [`ServerBuilder::build_live`](super::ServerBuilder::build_live).
#[derive(Clone)]
pub struct LiveHandle {
    pub(crate) active: Arc<ArcSwap<Active>>,
    pub(crate) metrics: Option<Arc<Metrics>>,
    pub(crate) metrics_router: Option<axum::Router>,
}

impl LiveHandle {
    /// `GET /metrics` on a router of its own, to serve on another address,
    /// when the server was built with
    /// [`metrics_on_own_listener`](super::ServerBuilder::metrics_on_own_listener)
    /// (and metrics on); `None` otherwise, `/metrics` being beside the API.
    pub fn metrics_router(&self) -> Option<axum::Router> {
        self.metrics_router.clone()
    }

    /// The generation being served.
    pub fn generation(&self) -> Generation {
        self.active.load().generation.clone()
    }

    /// Serves `next`'s stack, models, routes and health from now on, as
    /// generation `number + 1` with the config hash `hash`; requests in
    /// flight finish on the stack they started on. Only what a config
    /// describes is swapped: the client keys, body limit and whether
    /// `/metrics` is served stay those the server was built with.
    ///
    /// Fails, keeping the active generation, if `next`'s options have a
    /// problem (a model id with white space, a route without candidates).
    ///
    /// Concurrent swaps each get their own number, but the metrics'
    /// labels follow the swap that ran last: swap from one task at a time
    /// (as the gateway's `stack::Reloader` does).
    pub fn swap(
        &self,
        next: super::ServerBuilder,
        hash: impl Into<String>,
    ) -> Result<Generation, ConfigError> {
        let hash = hash.into();
        let mut active = next.into_active(Generation::first(hash.clone()))?;
        // Concurrent swaps each get their own number: `rcu` retries on a race.
        let mut generation = active.generation.clone();
        self.active.rcu(|old| {
            generation = Generation {
                number: old.generation.number.saturating_add(1),
                hash: hash.clone(),
                loaded_at: SystemTime::now(),
            };
            Arc::new(Active {
                stack: active.stack.clone(),
                models: active.models.clone(),
                listed: active.listed.clone(),
                only_listed: active.only_listed,
                routes: active.routes.clone(),
                health: active.health.clone(),
                generation: generation.clone(),
            })
        });
        active.generation = generation.clone();
        if let Some(metrics) = &self.metrics {
            metrics.relabel(&active);
        }
        Ok(generation)
    }
}

impl fmt::Debug for LiveHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LiveHandle")
            .field("generation", &self.generation())
            .finish_non_exhaustive()
    }
}
