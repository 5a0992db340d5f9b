//! The default store: every breaker in this process's memory.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard, RwLock};

use tokio::time::Instant;

use super::breaker::Breaker;
use super::policy::{BreakerSettings, Verdict};
use super::store::{Admission, CooldownStore, Permit, Transition};
use crate::layers::health::HealthView;
use crate::store::{of_provider, StoreFuture};

/// Breakers in memory: one small mutex per model under a read-mostly map, so
/// concurrent calls to different models never contend and calls to one model
/// hold its lock for a few instructions. No background task.
///
/// A model gets a breaker on its first outcome worth keeping; breakers that
/// hold nothing (closed, no recent failure) are swept when the map grows, so
/// unknown model ids do not accumulate.
#[derive(Default)]
pub struct InMemoryStore {
    map: RwLock<Map>,
}

#[derive(Default)]
struct Map {
    breakers: HashMap<Box<str>, Mutex<Breaker>>,
    sweep_at: usize,
}

const MIN_SWEEP: usize = 1024;

impl InMemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `f` on the breaker of `model`, if it has one.
    fn with<T>(&self, model: &str, f: impl FnOnce(&mut Breaker) -> T) -> Option<T> {
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        map.breakers.get(model).map(|b| f(&mut lock(b)))
    }
}

// A panic while a breaker is locked leaves it in a valid state: every
// transition is a plain assignment.
fn lock(breaker: &Mutex<Breaker>) -> MutexGuard<'_, Breaker> {
    breaker.lock().unwrap_or_else(|e| e.into_inner())
}

impl CooldownStore for InMemoryStore {
    fn admit(&self, model: &str, force: bool, now: Instant) -> StoreFuture<Admission> {
        StoreFuture::ready(self.admit_now(model, force, now))
    }

    fn record(
        &self,
        model: &str,
        permit: Permit,
        verdict: Verdict,
        settings: &BreakerSettings,
        now: Instant,
    ) -> StoreFuture<Transition> {
        StoreFuture::ready(self.record_now(model, permit, verdict, settings, now))
    }

    fn release(&self, model: &str, permit: Permit) {
        self.with(model, |b| b.release(permit));
    }

    fn forget_provider(&self, provider: &str) {
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        map.breakers.retain(|id, _| !of_provider(id, provider));
    }
}

impl InMemoryStore {
    /// [`CooldownStore::admit`], answered at once (for stores that keep one as their local view).
    pub(super) fn admit_now(&self, model: &str, force: bool, now: Instant) -> Admission {
        self.with(model, |b| b.admit(force, now))
            .unwrap_or(Admission::Admit(Breaker::fresh_permit()))
    }

    /// [`CooldownStore::record`], answered at once.
    pub(super) fn record_now(
        &self,
        model: &str,
        permit: Permit,
        verdict: Verdict,
        settings: &BreakerSettings,
        now: Instant,
    ) -> Transition {
        if let Some(transition) = self.with(model, |b| b.record(permit, verdict, settings, now)) {
            return transition;
        }
        let worth_keeping = match verdict {
            Verdict::Ignore => false,
            Verdict::Success => settings.failure_ratio.is_some(),
            Verdict::Failure | Verdict::Trip(_) => true,
        };
        if !worth_keeping {
            return Transition::Unchanged;
        }
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        if map.breakers.len() >= map.sweep_at.max(MIN_SWEEP) {
            map.breakers.retain(|_, b| !lock(b).is_idle(now));
            map.sweep_at = map.breakers.len() * 2;
        }
        let breaker = map
            .breakers
            .entry(model.into())
            .or_insert_with(|| Mutex::new(Breaker::new(settings, now)));
        let mut breaker = lock(breaker);
        breaker.record(permit, verdict, settings, now)
    }
}

impl HealthView for InMemoryStore {
    fn cooling_until(&self, model: &str) -> Option<Instant> {
        let now = Instant::now();
        self.with(model, |b| b.cooling_until(now)).flatten()
    }
}

impl fmt::Debug for InMemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        f.debug_struct("InMemoryStore")
            .field("models", &map.breakers.len())
            .finish()
    }
}
