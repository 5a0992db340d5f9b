//! Freeing a probe slot on Redis that a cancelled or timed-out call may hold.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::script::{Reply, SCRIPT};
use super::Inner;

/// The most releases kept for when Redis answers again.
const MAX_UNRELEASED: usize = 256;

/// A release to send when Redis answers again: model, probe id, end of its lease.
pub(super) type Unreleased = (Box<str>, u64, Option<Instant>);

/// Held across an `admit` or a probe's `record`: unless the reply came back
/// (and was handed on), the probe id is released on Redis. The script may
/// have granted the slot to a call that never learned of it, and every
/// replica would refuse probes until the lease ended.
pub(super) struct ProbeGuard {
    inner: Arc<Inner>,
    model: String,
    probe: Option<u64>,
}

impl ProbeGuard {
    pub(super) fn new(inner: &Arc<Inner>, model: &str, probe: u64) -> Self {
        ProbeGuard {
            inner: inner.clone(),
            model: model.to_owned(),
            probe: Some(probe),
        }
    }

    /// The reply arrived: its permit (if any) is settled by its holder.
    pub(super) fn disarm(mut self) {
        self.probe = None;
    }

    /// Redis failed or was too slow: release when it answers again (trying
    /// now would only add to the failures).
    pub(super) fn defer(mut self) {
        if let Some(probe) = self.probe.take() {
            self.inner.queue_release(&self.model, probe);
        }
    }
}

impl Drop for ProbeGuard {
    /// The future was dropped mid-flight: release now, in the background.
    fn drop(&mut self) {
        if let Some(probe) = self.probe {
            self.inner.release_remote(&self.model, probe);
        }
    }
}

impl Inner {
    /// Releases `probe` on Redis in the background: a no-op unless it holds
    /// the slot, and a release that overtakes its admit makes the admit
    /// refuse. Tried even during an outage (it is rare); one that fails is
    /// sent again when Redis answers, while its lease lasts.
    pub(super) fn release_remote(self: &Arc<Self>, model: &str, probe: u64) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let inner = self.clone();
        let model: Box<str> = model.into();
        runtime.spawn(async move {
            if !inner.send_release(&model, &[probe]).await {
                inner.queue_release(&model, probe);
            }
        });
    }

    pub(super) fn queue_release(&self, model: &str, probe: u64) {
        let lease = Duration::from_millis(self.lease_ms);
        let expires = Instant::now().checked_add(lease);
        let mut queue = self.unreleased.lock().unwrap_or_else(|e| e.into_inner());
        if queue.len() >= MAX_UNRELEASED {
            queue.remove(0);
        }
        queue.push((model.into(), probe, expires));
        self.has_unreleased.store(true, Ordering::Relaxed);
    }

    /// Redis answers again: sends the queued releases, one operation per model.
    pub(super) fn flush_unreleased(self: &Arc<Self>) {
        if !self.has_unreleased.swap(false, Ordering::Relaxed) {
            return;
        }
        let queue = std::mem::take(&mut *self.unreleased.lock().unwrap_or_else(|e| e.into_inner()));
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let now = Instant::now();
        let mut by_model: HashMap<Box<str>, Vec<u64>> = HashMap::new();
        for (model, probe, expires) in queue {
            if expires.is_none_or(|at| now < at) {
                by_model.entry(model).or_default().push(probe);
            }
        }
        let inner = self.clone();
        runtime.spawn(async move {
            for (model, probes) in by_model {
                inner.send_release(&model, &probes).await;
            }
        });
    }

    async fn send_release(&self, model: &str, probes: &[u64]) -> bool {
        let key = self.link.key("cb", model);
        let (lease, ttl) = (self.lease_ms, self.ttl_ms);
        self.link
            .run(|mut conn| async move {
                let mut call = SCRIPT.prepare_invoke();
                call.key(key).arg("release").arg(lease).arg(ttl);
                for probe in probes {
                    call.arg(*probe);
                }
                call.invoke_async::<Reply>(&mut conn).await
            })
            .await
            .is_some()
    }
}
