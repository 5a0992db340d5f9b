//! What a limit layer shares: each model's limits and the store that counts
//! them, and [`UsageView`], the read-only handle that ranking reads.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use tokio::time::Instant;

use super::config::Limits;
use super::store::{UsageStore, WindowUsage};

/// The limits of one layer and the store counting them, shared by its services.
pub(super) struct Shared {
    limits: HashMap<Arc<str>, Limits>,
    pub(super) store: Arc<dyn UsageStore>,
}

impl Shared {
    /// `limits` that limit something, counted in `store`.
    pub(super) fn new(
        limits: impl IntoIterator<Item = (String, Limits)>,
        store: Arc<dyn UsageStore>,
    ) -> Self {
        let limits = (limits.into_iter())
            .filter(|(_, l)| l.is_limited())
            .map(|(model, l)| (Arc::from(model), l))
            .collect();
        Shared { limits, store }
    }

    /// The model's id (shared) and limits, if it has some.
    pub(super) fn get(&self, model: &str) -> Option<(&Arc<str>, &Limits)> {
        self.limits.get_key_value(model)
    }

    pub(super) fn len(&self) -> usize {
        self.limits.len()
    }
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// A read-only view of a [`LimitLayer`](super::LimitLayer)'s limits and the
/// usage counted against them, for a routing layer to rank by and to skip
/// models that are full. Cheap to clone; every read is local and never blocks.
///
/// ```
/// use llm_fallback::layers::limit::{LimitLayer, Limits};
///
/// let limit = LimitLayer::builder()
///     .limits("azure/gpt-4o", Limits::default().with_rpm(600))
///     .build()
///     .unwrap();
/// let view = limit.usage();
/// assert_eq!(view.limits("azure/gpt-4o"), Some(Limits::default().with_rpm(600)));
/// assert_eq!(view.utilization("azure/gpt-4o"), 0.0);
/// ```
#[derive(Clone)]
pub struct UsageView {
    shared: Arc<Shared>,
}

impl UsageView {
    pub(super) fn new(shared: Arc<Shared>) -> Self {
        UsageView { shared }
    }

    /// The limits of `model`, if it has some.
    pub fn limits(&self, model: &str) -> Option<Limits> {
        self.shared.get(model).map(|(_, l)| *l)
    }

    /// The last known usage of `model` in its current window.
    pub fn usage(&self, model: &str) -> Option<WindowUsage> {
        self.shared.store.usage(model)
    }

    /// When `model` has room again, if its last known usage fills a limit.
    pub fn full_until(&self, model: &str, now: Instant) -> Option<Instant> {
        let (_, limits) = self.shared.get(model)?;
        let usage = self.shared.store.usage(model)?;
        let full = !limits.admits(usage.requests, usage.tokens, 1);
        (full && usage.resets_at > now).then_some(usage.resets_at)
    }

    /// How full `model`'s window is ([`Limits::utilization`]): 0 without
    /// limits or usage.
    pub fn utilization(&self, model: &str) -> f64 {
        let Some((_, limits)) = self.shared.get(model) else {
            return 0.0;
        };
        (self.shared.store.usage(model)).map_or(0.0, |u| limits.utilization(u.requests, u.tokens))
    }
}

impl fmt::Debug for UsageView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UsageView")
            .field("models", &self.shared.len())
            .finish_non_exhaustive()
    }
}
