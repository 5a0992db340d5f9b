//! The default usage store: counts in this process's memory.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use tokio::time::Instant;

use super::config::Limits;
use super::store::{Grant, Reservation, UsageStore, WindowUsage};
use crate::clamp::after;
use crate::store::{of_provider, StoreFuture};

/// The length of a usage window.
const WINDOW: Duration = Duration::from_secs(60);

/// Usage counts in memory, in one-minute windows counted from the store's
/// creation. One small mutex per model under a read-mostly map; entries of
/// past windows are swept when the map grows. No background task.
pub struct InMemoryUsage {
    origin: Instant,
    map: RwLock<Map>,
}

#[derive(Default)]
struct Map {
    counts: HashMap<Box<str>, Mutex<Counts>>,
    sweep_at: usize,
}

#[derive(Clone, Copy, Debug, Default)]
struct Counts {
    window: u64,
    requests: u64,
    tokens: u64,
}

const MIN_SWEEP: usize = 1024;

impl InMemoryUsage {
    /// An empty store; its windows start now.
    pub fn new() -> Self {
        InMemoryUsage {
            origin: Instant::now(),
            map: RwLock::default(),
        }
    }

    fn window(&self, now: Instant) -> (u64, Instant) {
        let n = now.saturating_duration_since(self.origin).as_secs() / WINDOW.as_secs();
        let ends = after(
            self.origin,
            WINDOW.saturating_mul(n.saturating_add(1).try_into().unwrap_or(u32::MAX)),
        );
        (n, ends)
    }

    fn with<T>(&self, model: &str, f: impl FnOnce(&mut Counts) -> T) -> T {
        {
            let map = self.map.read().unwrap_or_else(|e| e.into_inner());
            if let Some(counts) = map.counts.get(model) {
                return f(&mut counts.lock().unwrap_or_else(|e| e.into_inner()));
            }
        }
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        if map.counts.len() >= map.sweep_at.max(MIN_SWEEP) {
            let (current, _) = self.window(Instant::now());
            map.counts
                .retain(|_, c| c.get_mut().map_or(true, |c| c.window == current));
            map.sweep_at = map.counts.len() * 2;
        }
        let counts = map.counts.entry(model.into()).or_default();
        f(counts.get_mut().unwrap_or_else(|e| e.into_inner()))
    }

    /// Reserves at once (also the local view of [`RedisUsage`](super::RedisUsage)).
    pub(crate) fn reserve_now(&self, model: &str, limits: &Limits, tokens: u64) -> Reservation {
        let (window, ends) = self.window(Instant::now());
        self.with(model, |c| {
            if c.window != window {
                *c = Counts {
                    window,
                    ..Counts::default()
                };
            }
            if !limits.admits(c.requests, c.tokens, tokens) {
                return Reservation::Denied { until: ends };
            }
            c.requests += 1;
            c.tokens = c.tokens.saturating_add(tokens);
            Reservation::Granted(Grant { window, tokens })
        })
    }
}

impl Default for InMemoryUsage {
    fn default() -> Self {
        Self::new()
    }
}

impl UsageStore for InMemoryUsage {
    fn reserve(&self, model: &str, limits: &Limits, tokens: u64) -> StoreFuture<Reservation> {
        StoreFuture::ready(self.reserve_now(model, limits, tokens))
    }

    fn settle(&self, model: &str, grant: Grant, requests: u64, tokens: u64) {
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        let Some(counts) = map.counts.get(model) else {
            return;
        };
        let mut c = counts.lock().unwrap_or_else(|e| e.into_inner());
        if c.window == grant.window {
            c.requests = c.requests.saturating_add(requests).saturating_sub(1);
            c.tokens = c.tokens.saturating_add(tokens).saturating_sub(grant.tokens);
        }
    }

    fn usage(&self, model: &str) -> Option<WindowUsage> {
        let (window, resets_at) = self.window(Instant::now());
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        let c = *map
            .counts
            .get(model)?
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        (c.window == window).then_some(WindowUsage {
            requests: c.requests,
            tokens: c.tokens,
            resets_at,
        })
    }

    fn forget_provider(&self, provider: &str) {
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        map.counts.retain(|id, _| !of_provider(id, provider));
    }
}

impl fmt::Debug for InMemoryUsage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        f.debug_struct("InMemoryUsage")
            .field("models", &map.counts.len())
            .finish()
    }
}
