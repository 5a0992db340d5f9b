use std::sync::Arc;
use std::time::Duration;

use tower_layer::Layer;

use super::{Budget, Timeout};
use crate::per_model::PerModel;

/// Applies [`Timeout`] to a service: a per-attempt deadline per model, or the
/// total budget of the whole call.
///
/// A zero duration is allowed and fails every call at once, without an
/// upstream call, which is what it literally asks for.
#[derive(Clone, Debug)]
pub struct TimeoutLayer {
    budget: Budget,
}

impl TimeoutLayer {
    /// The same per-attempt deadline for every model.
    pub fn attempt(timeout: Duration) -> Self {
        Self::per_model(PerModel::new(Some(timeout)))
    }

    /// A per-attempt deadline per model; `None` means no attempt deadline for
    /// that model (an earlier deadline stamped in the request still applies).
    ///
    /// ```
    /// use std::time::Duration;
    /// use llm_fallback::{PerModel, TimeoutLayer};
    ///
    /// let layer = TimeoutLayer::per_model(
    ///     PerModel::new(Some(Duration::from_secs(30)))
    ///         .with("openai/o1", Some(Duration::from_secs(120)))
    ///         .with("local/llama", None),
    /// );
    /// # let _ = layer;
    /// ```
    pub fn per_model(timeouts: PerModel<Option<Duration>>) -> Self {
        TimeoutLayer {
            budget: Budget::Attempt(Arc::new(timeouts)),
        }
    }

    /// The budget of the whole call: the layer stamps `now + total` as the
    /// request's [`Deadline`](crate::Deadline) (an earlier one is kept) so the
    /// inner layers respect it, and fails with [`TimeoutKind::Total`] when it
    /// passes. Use it outermost.
    ///
    /// [`TimeoutKind::Total`]: crate::TimeoutKind::Total
    pub fn total(total: Duration) -> Self {
        TimeoutLayer {
            budget: Budget::Total(total),
        }
    }
}

impl<S> Layer<S> for TimeoutLayer {
    type Service = Timeout<S>;

    fn layer(&self, inner: S) -> Timeout<S> {
        Timeout {
            inner,
            budget: self.budget.clone(),
        }
    }
}
