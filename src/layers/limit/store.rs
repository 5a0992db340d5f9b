//! Where usage counts live: the [`UsageStore`] contract.

use tokio::time::Instant;

use super::config::Limits;
use crate::store::StoreFuture;

/// Requests and tokens per deployment in fixed one-minute windows, shared by
/// the limit layers built with it (and, for a shared store, by several
/// processes).
///
/// [`InMemoryUsage`](super::InMemoryUsage) is the default;
/// [`RedisUsage`](super::RedisUsage) shares the counts over Redis. A store
/// keeps the contract of [`CooldownStore`](crate::layers::cooldown::CooldownStore): never fail,
/// answer within a small time budget, fall back to a local view.
///
/// - **`reserve`** counts one request and `tokens` (the estimate) for `model`
///   in the current window, atomically with the check that they fit its
///   `limits`; when they do not, nothing is counted and the answer says when
///   the window ends. Windows are fixed minutes (on the server's clock for a
///   shared store), so at most `rpm` requests start in any one window.
/// - **`settle`** corrects a grant to what the call used: `requests` is 0 for
///   a call that never went upstream, `tokens` the response's usage. It must
///   not block (a remote store writes in the background). Settling in a later
///   window changes nothing.
/// - **`usage`** is a local, non-blocking read of the last known counts of
///   the current window, for routing strategies and to skip full deployments
///   without asking (see [`UsageView`](super::UsageView)).
pub trait UsageStore: Send + Sync + 'static {
    /// Counts one request of `tokens` for `model` if it fits `limits`.
    fn reserve(&self, model: &str, limits: &Limits, tokens: u64) -> StoreFuture<Reservation>;

    /// Corrects `grant` to the `requests` (0 or 1) and `tokens` the call used.
    fn settle(&self, model: &str, grant: Grant, requests: u64, tokens: u64);

    /// The last known usage of `model` in its current window.
    fn usage(&self, model: &str) -> Option<WindowUsage>;

    /// Drops what this process keeps about `provider`'s models (ids
    /// `provider/…`) and keys (`provider#…`): a reload whose config changed
    /// the provider's endpoint or key starts it afresh. State shared with
    /// other processes (Redis) is left to expire by itself, since they may
    /// still serve the old config. Default: nothing.
    fn forget_provider(&self, provider: &str) {
        let _ = provider;
    }
}

/// The answer to [`UsageStore::reserve`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reservation {
    /// Counted: the call may go.
    Granted(Grant),
    /// It would exceed a limit: try again at `until` (the window's end).
    Denied {
        /// When the window ends.
        until: Instant,
    },
}

/// What was counted for a call, handed back with [`UsageStore::settle`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grant {
    /// Opaque to the layer: the window it was counted in.
    pub window: u64,
    /// The tokens counted (the estimate).
    pub tokens: u64,
}

/// A deployment's usage in its current window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowUsage {
    /// Requests counted.
    pub requests: u64,
    /// Tokens counted (estimates until settled).
    pub tokens: u64,
    /// When the window ends and the counts start over.
    pub resets_at: Instant,
}
