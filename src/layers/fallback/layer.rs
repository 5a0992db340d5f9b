use std::fmt;
use std::sync::Arc;

use tower_layer::Layer;

use super::builder::FallbackBuilder;
use super::candidates::Table;
use super::ProviderFallback;
use crate::chat::ConfigError;
use crate::layers::health::Health;
use crate::layers::route::RoutePolicy;

/// Applies [`ProviderFallback`] to a service. Cheap to clone: the tables are shared.
#[derive(Clone)]
pub struct ProviderFallbackLayer {
    pub(super) table: Arc<Table>,
    pub(super) policy: Arc<RoutePolicy>,
}

impl ProviderFallbackLayer {
    /// Starts a builder (groups, dedicated routes per kind, bounds, health).
    pub fn builder() -> FallbackBuilder {
        FallbackBuilder::default()
    }

    /// Falls back within the groups of `MODEL_FALLBACK_GROUPS` (see
    /// [`FallbackGroups`](super::FallbackGroups) for the format).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::builder().groups_from_env().build()
    }

    /// Skips candidates that `health` says are cooling down.
    pub fn with_health(mut self, health: Health) -> Self {
        Arc::make_mut(&mut self.policy).health = health;
        self
    }

    pub(super) fn from_parts(table: Arc<Table>, policy: Arc<RoutePolicy>) -> Self {
        ProviderFallbackLayer { table, policy }
    }
}

impl<S> Layer<S> for ProviderFallbackLayer {
    type Service = ProviderFallback<S>;

    fn layer(&self, inner: S) -> ProviderFallback<S> {
        ProviderFallback::new(inner, self.clone())
    }
}

impl fmt::Debug for ProviderFallbackLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderFallbackLayer")
            .field("requestable_ids", &self.table.len())
            .field("policy", &self.policy)
            .finish()
    }
}
