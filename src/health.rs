//! A read-only view of which models are cooling down, shared by the layers that route.

use std::fmt;
use std::sync::Arc;

use tokio::time::Instant;

/// Tells whether a model's circuit breaker is open.
///
/// [`Cooldown`](crate) provides one; the balance and fallback layers read it
/// to skip open models without calling them.
pub trait HealthView: Send + Sync + 'static {
    /// When `model` accepts calls again, or `None` if it does now.
    fn cooling_until(&self, model: &str) -> Option<Instant>;
}

/// A shared [`HealthView`].
#[derive(Clone)]
pub struct Health(Arc<dyn HealthView>);

impl Health {
    /// Wraps a view.
    pub fn new(view: impl HealthView) -> Self {
        Health(Arc::new(view))
    }

    /// A view in which every model is healthy.
    pub fn always_healthy() -> Self {
        Health::new(AlwaysHealthy)
    }

    /// When `model` accepts calls again, or `None` if it does now.
    pub fn cooling_until(&self, model: &str) -> Option<Instant> {
        self.0.cooling_until(model)
    }

    /// Whether `model` accepts calls now.
    pub fn is_available(&self, model: &str) -> bool {
        match self.0.cooling_until(model) {
            None => true,
            Some(until) => until <= Instant::now(),
        }
    }
}

impl Default for Health {
    fn default() -> Self {
        Health::always_healthy()
    }
}

impl fmt::Debug for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Health").finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct AlwaysHealthy;

impl HealthView for AlwaysHealthy {
    fn cooling_until(&self, _model: &str) -> Option<Instant> {
        None
    }
}

/// A request extension that asks the `Cooldown` layer to let this call through
/// even though the model's breaker is open.
///
/// A routing layer sets it when every candidate is cooling down: trying the
/// one whose cooldown ends first beats failing without any call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ForceAttempt;
