//! The balance settings as plain data: what a config file's routes give
//! [`WeightedBalanceLayer::from_config`](super::WeightedBalanceLayer::from_config).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::strategy::RoutingStrategy;

/// The balance settings as plain data (serde).
///
/// ```
/// use llm_fallback::layers::balance::BalanceConfig;
/// use llm_fallback::WeightedBalanceLayer;
/// let config: BalanceConfig = serde_json::from_value(serde_json::json!({
///     "routes": {
///         "gpt-4o": {"azure/gpt-4o": 0.7, "openai/gpt-4o": 0.3},
///         "mini": [{"model": "azure/gpt-4o-mini", "weight": 2}, "openai/gpt-4o-mini"]
///     },
///     "seed": 7,
///     "strategy": "least_busy"
/// })).unwrap();
/// let layer = WeightedBalanceLayer::from_config(&config).unwrap();
/// # let _ = layer;
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BalanceConfig {
    /// Alias -> weighted candidates.
    pub routes: BTreeMap<String, RouteCandidates>,
    /// Overrides of which error kinds (by name, e.g. `timeout`) trigger another draw.
    pub fallback_on: BTreeMap<String, bool>,
    /// At most this many draws after the first failed candidate (default: no bound).
    pub max_fallbacks: Option<usize>,
    /// Seeds the draws, for reproducible runs (default: seeded by the OS).
    pub seed: Option<u64>,
    /// How to pick among the available candidates (default `weighted`).
    pub strategy: RoutingStrategy,
    /// For `lowest_latency`: the share within which candidates count as
    /// equally fast (default 0.1).
    pub latency_buffer: Option<f64>,
}

/// A route's candidates: a map from model id to weight, or a list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RouteCandidates {
    /// `{"azure/gpt-4o": 0.7, "openai/gpt-4o": 0.3}`
    Map(BTreeMap<String, f64>),
    /// `[{"model": "azure/gpt-4o", "weight": 0.7}, "openai/gpt-4o"]`
    List(Vec<WeightedModel>),
}

/// One candidate of a list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum WeightedModel {
    /// A model id, weight 1.
    Model(String),
    /// A model id with its weight.
    Weighted {
        /// The model id.
        model: String,
        /// Its weight (relative; need not sum to 1).
        weight: f64,
    },
}

impl RouteCandidates {
    /// `(model id, weight)` pairs, weight 1 where none is given.
    pub(crate) fn pairs(&self) -> Vec<(String, f64)> {
        match self {
            RouteCandidates::Map(map) => map.iter().map(|(m, w)| (m.clone(), *w)).collect(),
            RouteCandidates::List(list) => list
                .iter()
                .map(|c| match c {
                    WeightedModel::Model(m) => (m.clone(), 1.0),
                    WeightedModel::Weighted { model, weight } => (model.clone(), *weight),
                })
                .collect(),
        }
    }
}
