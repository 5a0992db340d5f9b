use std::fmt;
use std::sync::Arc;

use tower_layer::Layer;

use super::builder::BalanceBuilder;
use super::candidates::BalanceTable;
use super::config::BalanceConfig;
use super::load::Load;
use super::strategy::Ranking;
use super::WeightedBalance;
use crate::chat::ConfigError;
use crate::layers::health::Health;
use crate::layers::route::RoutePolicy;
use crate::rng::SharedRng;

/// Applies [`WeightedBalance`] to a service. Cheap to clone: the routes and
/// the random source are shared.
#[derive(Clone)]
pub struct WeightedBalanceLayer {
    pub(super) table: Arc<BalanceTable>,
    pub(super) policy: Arc<RoutePolicy>,
    pub(super) rng: SharedRng,
    pub(super) ranking: Option<Arc<Ranking>>,
    pub(super) load: Option<Arc<Load>>,
}

impl WeightedBalanceLayer {
    /// Starts a builder (routes, random source, health, bounds).
    pub fn builder() -> BalanceBuilder {
        BalanceBuilder::default()
    }

    /// Builds the layer from a config value.
    pub fn from_config(config: &BalanceConfig) -> Result<Self, ConfigError> {
        Self::builder().config(config).build()
    }

    /// Draws only among candidates that `health` says are not cooling down.
    pub fn with_health(mut self, health: Health) -> Self {
        Arc::make_mut(&mut self.policy).health = health;
        self
    }

    /// Draws with `rng`.
    pub fn with_rng(mut self, rng: SharedRng) -> Self {
        self.rng = rng;
        self
    }

    pub(super) fn from_parts(
        table: Arc<BalanceTable>,
        policy: Arc<RoutePolicy>,
        rng: SharedRng,
        (ranking, load): (Option<Arc<Ranking>>, Option<Arc<Load>>),
    ) -> Self {
        WeightedBalanceLayer {
            table,
            policy,
            rng,
            ranking,
            load,
        }
    }
}

impl<S> Layer<S> for WeightedBalanceLayer {
    type Service = WeightedBalance<S>;

    fn layer(&self, inner: S) -> WeightedBalance<S> {
        WeightedBalance::new(inner, self.clone())
    }
}

impl fmt::Debug for WeightedBalanceLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WeightedBalanceLayer")
            .field("routes", &self.table.len())
            .field("policy", &self.policy)
            .field("ranking", &self.ranking)
            .finish()
    }
}
