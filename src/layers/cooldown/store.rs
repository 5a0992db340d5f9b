//! Where breaker state lives: the [`CooldownStore`] contract and the answers it gives.

use std::time::Duration;

use tokio::time::Instant;

use super::policy::{BreakerSettings, Verdict};
use crate::layers::health::HealthView;
use crate::store::StoreFuture;

/// The state of every model's breaker, shared by all the [`Cooldown`](super::Cooldown)
/// services built from one layer (and, for a shared store, by several processes).
///
/// [`InMemoryStore`](super::InMemoryStore) is the default. A store must keep
/// this contract:
///
/// - **Never fail, never block for long.** Every operation answers within a
///   small time budget. A store backed by a remote service (Redis) bounds
///   each operation (a few milliseconds) and, when the backend is slow or
///   down, answers from a local view, logging a warning now and then. A store
///   outage must never fail a user's request. In-memory stores answer with
///   [`StoreFuture::ready`], which costs nothing; remote ones may return
///   [`StoreFuture::boxed`].
/// - **`admit`**: a closed breaker gives a [`PermitKind::Normal`] permit. An
///   open breaker refuses with the time it ends, unless `force` is set (the
///   request carries [`ForceAttempt`](crate::layers::health::ForceAttempt), or the layer's
///   [`AllCooling`](crate::layers::health::AllCooling) policy tries a model requested
///   directly): then it gives a
///   [`PermitKind::Forced`] permit. Once the open time has passed, the next
///   call gets the one [`PermitKind::Probe`] permit (half-open) and every other
///   call is refused (or forced) while the probe runs: exactly one probe at a
///   time among all the callers sharing the store, so a remote store grants it
///   with an atomic conditional write.
/// - **`record`**: applies the call's [`Verdict`] with the model's
///   [`BreakerSettings`] and says which [`Transition`] it made. Closed: a
///   `Failure` counts (consecutive and in the ratio window), `Success` resets
///   the consecutive count, `Trip` opens at once. The probe's `Success` closes
///   the breaker (counts reset); its `Failure` or `Trip` reopens it (for
///   [`BreakerSettings::next_cooldown`], or the `Trip` time); its `Ignore`
///   frees the probe slot. A forced call's `Success` closes the breaker; its
///   failure keeps it open at least a cooldown longer. An outcome whose permit
///   is stale (granted before the breaker last changed state) never opens or
///   closes the breaker, but a stale `Trip` with a time may extend an open one.
/// - **`release`**: the probe's call was cancelled before an outcome: free
///   the slot so the next call probes. It is called from `Drop`, so it must
///   not block; a remote store may release in the background, and bounds
///   every probe slot with a lease anyway (a process that dies mid-probe must
///   not leave the breaker half-open forever). Releasing anything but the
///   current probe is a no-op. Likewise an `admit` or a probe's `record`
///   whose future is dropped, or whose answer comes too late, must not leave
///   the slot taken.
/// - **`cooling_until`** (from [`HealthView`]): a local, non-blocking read:
///   the open time's end, or, while a probe runs, an estimate of when the
///   model may next be tried. Balance and fallback layers read it to skip
///   open models.
///
/// Keys are model ids, `provider/model`. Entries should expire or be swept
/// once they hold nothing (closed, no recent failure), so a stream of unknown
/// model ids does not accumulate.
pub trait CooldownStore: HealthView {
    /// Decides whether a call to `model` may go upstream now.
    fn admit(&self, model: &str, force: bool, now: Instant) -> StoreFuture<Admission>;

    /// Applies the outcome of a call admitted with `permit`.
    fn record(
        &self,
        model: &str,
        permit: Permit,
        verdict: Verdict,
        settings: &BreakerSettings,
        now: Instant,
    ) -> StoreFuture<Transition>;

    /// Frees the probe slot held by `permit`, whose call was cancelled.
    fn release(&self, model: &str, permit: Permit);

    /// Drops what this process keeps about `provider`'s models (ids
    /// `provider/…`) and keys (`provider#…`): a reload whose config changed
    /// the provider's endpoint or key starts it afresh. State shared with
    /// other processes (Redis) is left to expire by itself, since they may
    /// still serve the old config. Default: nothing.
    fn forget_provider(&self, provider: &str) {
        let _ = provider;
    }
}

/// The store's answer to [`CooldownStore::admit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// The call may go upstream.
    Admit(Permit),
    /// The breaker is open: fail fast, the model may be tried again at `until`.
    Refuse {
        /// When the model may be tried again (an estimate while a probe runs).
        until: Instant,
    },
}

/// Leave to call upstream, handed back to the store with the outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Permit {
    /// Why the call was let through.
    pub kind: PermitKind,
    /// Opaque to the layer: what the store needs to recognise its own grant
    /// (e.g. the generation of the state it was granted in, or the probe's id).
    pub token: u64,
}

/// Why a call was let through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PermitKind {
    /// The breaker is closed.
    Normal,
    /// The one trial call of a half-open breaker.
    Probe,
    /// The breaker is open but the request carries [`ForceAttempt`](crate::layers::health::ForceAttempt).
    Forced,
}

/// What [`CooldownStore::record`] did to the breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    /// No change of state.
    Unchanged,
    /// The breaker opened (or reopened, after a failed probe), or an open
    /// breaker was kept open longer.
    Opened {
        /// When it lets a probe through.
        until: Instant,
        /// How long it stays open from now.
        cooldown: Duration,
    },
    /// The breaker closed.
    Closed,
}
