//! A call's permit until its verdict reaches the store: the one place that
//! records a verdict, for the response future and for a committed stream.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::time::Instant;

use super::policy::Verdict;
use super::store::{Permit, PermitKind, Transition};
use super::Shared;
use crate::layers::health::BreakerTransitions;
use crate::store::StoreFuture;

/// The permit of one admitted call, until its verdict is recorded. Dropped
/// before that while it holds the half-open probe, it frees the probe slot.
pub(super) struct Pending {
    pub(super) shared: Arc<Shared>,
    pub(super) model: String,
    pub(super) permit: Option<Permit>,
    /// The verdict went to the store: nothing to release on drop.
    settled: bool,
}

impl Pending {
    pub(super) fn new(shared: Arc<Shared>, model: String) -> Self {
        Pending {
            shared,
            model,
            permit: None,
            settled: false,
        }
    }

    /// Moves the permit (and the duty to settle it) into a new `Pending`,
    /// leaving this one with nothing to record or release.
    pub(super) fn take(&mut self) -> Pending {
        let mut moved = Pending::new(self.shared.clone(), self.model.clone());
        moved.permit = self.permit.take();
        moved.settled = std::mem::replace(&mut self.settled, true);
        moved
    }

    /// Hands the verdict to the store, once: later calls answer `Unchanged`.
    pub(super) fn record(&mut self, verdict: Verdict) -> StoreFuture<Transition> {
        let Some(permit) = self.permit.filter(|_| !self.settled) else {
            return StoreFuture::ready(Transition::Unchanged);
        };
        self.settled = true;
        if let Some(throttles) = &self.shared.throttles {
            match verdict {
                Verdict::Success | Verdict::Ignore => {
                    if verdict == Verdict::Success && permit.kind != PermitKind::Normal {
                        // The probe (or forced call) closes the breaker: start afresh.
                        throttles.reset(&self.model);
                    }
                    throttles.accepted(&self.model, Instant::now());
                }
                Verdict::Failure | Verdict::Trip(_) => {
                    throttles.failed(&self.model, Instant::now());
                }
            }
        }
        let settings = self.shared.settings.get(&self.model);
        self.shared
            .store
            .record(&self.model, permit, verdict, settings, Instant::now())
    }

    /// Records the verdict without waiting: a store that answers later is
    /// driven by a task of its own (when there is a runtime to spawn it on).
    pub(super) fn settle(&mut self, verdict: Verdict) {
        let mut record = self.record(verdict);
        let kind = self.permit.map(|p| p.kind);
        match record.now() {
            Some(transition) => report(&self.shared, &self.model, kind, transition),
            None => {
                let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                    // No runtime, no way to drive it: the store's probe lease
                    // frees a held slot in time.
                    tracing::debug!(model = &*self.model, "no runtime: verdict not recorded");
                    return;
                };
                let model = self.model.clone();
                let shared = self.shared.clone();
                runtime.spawn(async move { report(&shared, &model, kind, record.await) });
            }
        }
    }
}

/// Logs and counts what the verdict did to the breaker.
pub(super) fn report(
    shared: &Shared,
    model: &str,
    kind: Option<PermitKind>,
    transition: Transition,
) {
    shared.transitions.note(model, &transition);
    match transition {
        // `until` is a monotonic instant, meaningless in a log line:
        // the duration says when.
        // How long it stays open from now (an extension included).
        Transition::Opened { cooldown, .. } => tracing::warn!(
            model,
            open_for_ms = cooldown.as_millis() as u64,
            reopened = kind.is_some_and(|k| k != PermitKind::Normal),
            "breaker opened"
        ),
        Transition::Closed => tracing::info!(model, "breaker closed"),
        Transition::Unchanged => {}
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        let Some(permit) = self.permit.filter(|_| !self.settled) else {
            return;
        };
        // A cancelled call (the caller left, or a hedge lost its race) says
        // nothing against the model: the throttle counts it as answered, as
        // it does a call whose failure the breaker ignores.
        if let Some(throttles) = &self.shared.throttles {
            throttles.accepted(&self.model, Instant::now());
        }
        if permit.kind == PermitKind::Probe {
            tracing::debug!(model = &*self.model, "probe cancelled: slot released");
            self.shared.store.release(&self.model, permit);
        }
    }
}

/// How often each model's breaker opened and closed in this process, for
/// [`Health::transitions`](crate::layers::health::Health::transitions).
#[derive(Debug, Default)]
pub(super) struct TransitionCounts {
    models: Mutex<HashMap<String, BreakerTransitions>>,
}

/// Models counted at most: model ids can come from clients (with unlisted
/// models allowed), and a count is not worth unbounded memory.
const MAX_COUNTED: usize = 4096;

impl TransitionCounts {
    fn note(&self, model: &str, transition: &Transition) {
        if matches!(transition, Transition::Unchanged) {
            return;
        }
        let mut models = self.models.lock().unwrap_or_else(|e| e.into_inner());
        if models.len() >= MAX_COUNTED && !models.contains_key(model) {
            return;
        }
        let counts = models.entry(model.to_owned()).or_default();
        match transition {
            Transition::Opened { .. } => counts.opened = counts.opened.saturating_add(1),
            Transition::Closed => counts.closed = counts.closed.saturating_add(1),
            Transition::Unchanged => {}
        }
    }

    pub(super) fn get(&self, model: &str) -> BreakerTransitions {
        let models = self.models.lock().unwrap_or_else(|e| e.into_inner());
        models.get(model).copied().unwrap_or_default()
    }
}
