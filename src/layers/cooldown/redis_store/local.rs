//! The local view of a [`RedisStore`](super::RedisStore): an in-memory
//! store that mirrors what Redis reports and answers while Redis cannot.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::time::Instant;

use super::script::{ms, Reply, SCRIPT};
use super::{Inner, LOCAL};
use crate::layers::cooldown::policy::{BreakerSettings, Verdict};
use crate::layers::cooldown::store::{Admission, Permit, Transition};
use crate::layers::health::HealthView;

/// The most breakers opened during an outage that are pushed to Redis when it returns.
const MAX_PENDING: usize = 1024;

impl Inner {
    pub(super) fn local_admit(&self, model: &str, force: bool, now: Instant) -> Admission {
        match self.local.admit_now(model, force, now) {
            Admission::Admit(permit) => Admission::Admit(Permit {
                token: permit.token | LOCAL,
                ..permit
            }),
            refuse => refuse,
        }
    }

    pub(super) fn local_record(
        &self,
        model: &str,
        permit: Permit,
        verdict: Verdict,
        settings: &BreakerSettings,
        now: Instant,
    ) -> Transition {
        let transition = self.local.record_now(model, permit, verdict, settings, now);
        if let Transition::Opened { until, .. } = transition {
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            if pending.len() >= MAX_PENDING {
                pending.remove(0);
            }
            pending.push((model.into(), until));
            self.has_pending.store(true, Ordering::Relaxed);
        }
        transition
    }

    /// An outcome whose permit came from Redis, applied to the local view
    /// because Redis did not answer.
    pub(super) fn apply_locally(
        &self,
        model: &str,
        verdict: Verdict,
        settings: &BreakerSettings,
        now: Instant,
    ) -> Transition {
        match self.local.admit_now(model, true, now) {
            Admission::Admit(permit) => self.local_record(model, permit, verdict, settings, now),
            Admission::Refuse { .. } => Transition::Unchanged,
        }
    }

    /// Makes the local view open until `until` at least.
    pub(super) fn mirror_open(&self, model: &str, until: Instant, settings: &BreakerSettings) {
        let now = Instant::now();
        if until <= now || self.local.cooling_until(model).is_some_and(|u| u >= until) {
            return;
        }
        if let Admission::Admit(permit) = self.local.admit_now(model, true, now) {
            let trip = Verdict::Trip(Some(until - now));
            self.local.record_now(model, permit, trip, settings, now);
        }
    }

    /// Makes the local view closed, unless it holds breakers still to push.
    pub(super) fn mirror_closed(&self, model: &str, settings: &BreakerSettings) {
        if self.has_pending.load(Ordering::Relaxed) || self.local.cooling_until(model).is_none() {
            return;
        }
        let now = Instant::now();
        if let Admission::Admit(permit) = self.local.admit_now(model, true, now) {
            self.local
                .record_now(model, permit, Verdict::Success, settings, now);
        }
    }

    /// Redis answers again: pushes the breakers opened meanwhile, in the background.
    pub(super) fn flush_pending(self: &Arc<Self>) {
        if !self.has_pending.swap(false, Ordering::Relaxed) {
            return;
        }
        let pending = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let inner = self.clone();
        runtime.spawn(async move {
            for (model, until) in pending {
                let left = until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    continue;
                }
                let key = inner.link.key("cb", &model);
                let (lease, ttl) = (inner.lease_ms, inner.ttl_ms);
                let pushed = inner
                    .link
                    .run(|mut conn| async move {
                        let mut call = SCRIPT.prepare_invoke();
                        call.key(key).arg("push").arg(lease).arg(ttl).arg(ms(left));
                        call.invoke_async::<Reply>(&mut conn).await
                    })
                    .await;
                tracing::debug!(
                    model = &*model,
                    pushed = pushed.is_some(),
                    "breaker resynchronized"
                );
            }
        });
    }
}
