//! `[fallback.hedge]`: the hedge section of a config file, and the [`Hedge`]
//! it builds for both routing layers.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Hedge, HedgeBudget, LearnedDelay};
use crate::chat::ConfigError;
use crate::layers::retry::BudgetConfig;
use crate::settings::{positive, HumanDuration, PerModelSetting, Scope, TimeLimit};

/// Where the section sits in a config file: its problems are named so (the
/// builders name theirs `hedge.<field>`, so they go under `fallback`).
const PATH: &str = "fallback.hedge";

/// `[fallback.hedge]`: hedged calls (see [`layers::hedge`](super)).
///
/// ```toml
/// [fallback.hedge]
/// delay = "800ms"        # or "off", or { default = "800ms", models = { "azure/gpt-4o" = "2s" } }
/// budget = { window = "10s", min_per_second = 1, ratio = 0.1 }
/// learned = { percentile = 0.95, floor = "100ms", ceiling = "5s", min_observations = 20, window = 200 }
/// ```
///
/// ```
/// use llm_fallback::layers::hedge::{Hedge, HedgeConfig};
/// use llm_fallback::settings::Scope;
///
/// let config: HedgeConfig = serde_json::from_value(serde_json::json!({
///     "delay": {"default": "800ms", "models": {"azure/gpt-4o": "off"}},
///     "budget": {"ratio": 0.05},
///     "learned": {"percentile": 0.9}
/// })).unwrap();
/// let hedge = Hedge::from_config(&config, &Scope::new()).unwrap();
/// assert_eq!(hedge.delay("azure/gpt-4o", "azure/gpt-4o"), None);
/// assert!(hedge.delay("openai/gpt-4o", "openai/gpt-4o").is_some());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct HedgeConfig {
    /// After how long a candidate that has not answered is raced by the
    /// next one: a duration or `"off"`, per model id or route alias too.
    /// Unset: no call is hedged.
    pub delay: PerModelSetting<TimeLimit>,
    /// The share of calls that may be hedged.
    /// Unset fields keep [`HedgeBudget::default`]'s (10 s, 1 per second,
    /// 10 % of calls).
    pub budget: BudgetConfig,
    /// Learn each model's delay from its answer times (default: off; `{}`
    /// for the defaults of [`LearnedDelay`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub learned: Option<LearnedConfig>,
}

/// A learned delay; unset fields keep [`LearnedDelay::builder`]'s defaults.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct LearnedConfig {
    /// The percentile of answer times to hedge at (0 to 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percentile: Option<f64>,
    /// The shortest learned delay.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub floor: Option<HumanDuration>,
    /// The longest learned delay.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ceiling: Option<HumanDuration>,
    /// Answers of a model needed before its learned delay is used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_observations: Option<usize>,
    /// Answers kept per model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<usize>,
}

impl Hedge {
    /// The hedge `[fallback.hedge]` describes, its model keys checked (and
    /// route aliases expanded) against `scope`; every problem at once.
    pub fn from_config(config: &HedgeConfig, scope: &Scope) -> Result<Hedge, ConfigError> {
        let mut errors = ConfigError::default();
        let path = format!("{PATH}.delay");
        let delays = scope.per_model(&path, &config.delay, TimeLimit::Unlimited, &mut errors);
        if let TimeLimit::After(d) = delays.default_value() {
            positive(&mut errors, &path, *d, "");
        }
        let mut hedge = match delays.default_value().get() {
            Some(delay) => Hedge::new(delay),
            None => Hedge::off(),
        };
        for (model, delay) in delays.overrides() {
            hedge = hedge.delay_for(model, delay.get());
        }
        let (window, min_per_second, ratio) = config.budget.or((Duration::from_secs(10), 1, 0.1));
        let budget = HedgeBudget::new(window, min_per_second, ratio);
        match budget {
            Ok(budget) => hedge = hedge.budget(budget),
            Err(e) => errors.extend(e.under("fallback")),
        }
        if let Some(l) = &config.learned {
            let mut builder = LearnedDelay::builder();
            if let Some(p) = l.percentile {
                builder = builder.percentile(p);
            }
            if let Some(floor) = l.floor {
                builder = builder.floor(floor.get());
            }
            if let Some(ceiling) = l.ceiling {
                builder = builder.ceiling(ceiling.get());
            }
            if let Some(n) = l.min_observations {
                builder = builder.min_observations(n);
            }
            if let Some(n) = l.window {
                builder = builder.window(n);
            }
            match builder.build() {
                Ok(learned) => hedge = hedge.learned(learned),
                Err(e) => errors.extend(e.under("fallback")),
            }
        }
        errors.into_result(hedge)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(value: serde_json::Value) -> HedgeConfig {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn an_unset_delay_hedges_nothing() {
        let hedge = Hedge::from_config(&HedgeConfig::default(), &Scope::new()).unwrap();
        assert!(hedge.is_off());
    }

    #[test]
    fn a_route_alias_sets_the_delay_of_its_models_unless_they_have_their_own() {
        let scope = Scope::new().route("smart", ["a/m", "b/m"]);
        let config = config(serde_json::json!({
            "delay": {"default": "1s", "models": {"smart": "300ms", "b/m": "off"}}
        }));
        let hedge = Hedge::from_config(&config, &scope).unwrap();
        assert_eq!(hedge.delay("a/m", "x"), Some(Duration::from_millis(300)));
        assert_eq!(hedge.delay("b/m", "x"), None);
        assert_eq!(hedge.delay("c/m", "x"), Some(Duration::from_secs(1)));
    }

    #[test]
    fn every_mistake_is_reported_under_the_section_path() {
        let config = config(serde_json::json!({
            "delay": {"default": "0s", "models": {"not a model": "1s"}},
            "budget": {"ratio": -1.0},
            "learned": {"percentile": 2.0, "window": 0}
        }));
        let e = Hedge::from_config(&config, &Scope::new()).unwrap_err();
        let paths: Vec<_> = e.problems().iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "fallback.hedge.delay.models.\"not a model\"",
                "fallback.hedge.delay",
                "fallback.hedge.budget.ratio",
                "fallback.hedge.learned.percentile",
                "fallback.hedge.learned.window",
                "fallback.hedge.learned.min_observations",
            ]
        );
    }
}
