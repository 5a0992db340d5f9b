//! `[cooldown]`: the section of a config file, and the layer it builds.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{
    AdaptiveThrottle, BreakerSettings, CooldownLayer, CooldownStore, FailureRatio, Growth,
};
use crate::chat::{ConfigError, PerModel};
use crate::layers::health::AllCooling;
use crate::rng::SharedRng;
use crate::settings::{key_path, positive, HumanDuration, PerModelSetting, Scope, Switch};

/// `[cooldown]`: the per-model circuit breaker.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct CooldownConfig {
    /// Whether failing models are cooled down at all (default true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Consecutive failures that trip a model's breaker, per model; 0 turns
    /// the rule off (default 5).
    pub consecutive_failures: PerModelSetting<u32>,
    /// How long a tripped model is skipped before one probe, per model (default 5 s).
    pub cooldown: PerModelSetting<HumanDuration>,
    /// Trips on a share of failures over a window (`false` for none).
    pub failure_ratio: Switch<FailureRatioConfig>,
    /// Grows the cooldown after each failed probe (default: constant).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub growth: Option<GrowthConfig>,
    /// The longest a `Retry-After` keeps a model cooling (default 10 min).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_retry_after: Option<HumanDuration>,
    /// What a call does when every candidate it has left is cooling:
    /// `"try_earliest"` (default: one attempt to the one that recovers
    /// first) or `"fail_fast"`; the same for routes and direct models.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub when_all_cooling: Option<String>,
    /// Client-side adaptive throttling (`false` for none; defaults
    /// `k = 2.0`, `window = "30s"`, `min_requests = 10`).
    pub adaptive_throttle: Switch<ThrottleConfig>,
}

/// Sheds calls to a failing model with probability
/// `(requests − k·accepts) / (requests + 1)` over `window`
/// (see [`AdaptiveThrottle`](crate::layers::cooldown::AdaptiveThrottle)).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct ThrottleConfig {
    /// The multiplier of accepts, at least 1 (default 2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub k: Option<f64>,
    /// How far back calls are counted (default 30 s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<HumanDuration>,
    /// Fewer calls in the window are never shed (default 10).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_requests: Option<u32>,
}

/// Trips when `ratio` of at least `min_calls` calls over `window` failed
/// (defaults 0.5, 30 s, 20).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct FailureRatioConfig {
    /// Share of failures, in (0, 1].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio: Option<f64>,
    /// The rolling window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<HumanDuration>,
    /// Fewer calls never trip.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_calls: Option<u32>,
}

/// Multiplies the cooldown by `factor` after each failed probe, up to `max`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct GrowthConfig {
    /// At least 1.
    pub factor: f64,
    /// The longest cooldown.
    pub max: HumanDuration,
}

impl GrowthConfig {
    /// Multiplies by `factor` after each failed probe, up to `max`.
    pub fn new(factor: f64, max: Duration) -> Self {
        GrowthConfig {
            factor,
            max: HumanDuration(max),
        }
    }
}

impl CooldownLayer {
    /// The layer `[cooldown]` describes (`None` with `enabled = false`,
    /// still checked), model keys checked against `scope`, breakers kept in
    /// `store`, the throttle drawing from `rng`.
    ///
    /// The breaker rules are checked here with the file's paths; the rest
    /// (the throttle, `max_retry_after`) by [`CooldownBuilder::build`](super::CooldownBuilder::build).
    pub fn from_config(
        config: &CooldownConfig,
        scope: &Scope,
        rng: SharedRng,
        store: Arc<dyn CooldownStore>,
    ) -> Result<Option<CooldownLayer>, ConfigError> {
        let mut errors = ConfigError::default();
        let d = BreakerSettings::default();
        let consecutive_failures = scope.per_model(
            "cooldown.consecutive_failures",
            &config.consecutive_failures,
            d.consecutive_failures,
            &mut errors,
        );
        let cooldown = scope
            .per_model(
                "cooldown.cooldown",
                &config.cooldown,
                d.cooldown.into(),
                &mut errors,
            )
            .map(HumanDuration::get);
        positive(
            &mut errors,
            "cooldown.cooldown",
            *cooldown.default_value(),
            "",
        );
        for (model, value) in cooldown.overrides() {
            let path = format!("cooldown.cooldown.models.{}", key_path(model));
            positive(&mut errors, &path, *value, "");
        }
        let failure_ratio = failure_ratio(&config.failure_ratio, d, &mut errors);
        let growth = growth(config.growth.as_ref(), &cooldown, &mut errors);
        let all_cooling = match config.when_all_cooling.as_deref() {
            None => AllCooling::default(),
            Some(name) => AllCooling::parse(name).unwrap_or_else(|| {
                errors.push(
                    "cooldown.when_all_cooling",
                    format!("{name:?} is not \"fail_fast\" or \"try_earliest\""),
                );
                AllCooling::default()
            }),
        };
        let mut b = CooldownLayer::builder()
            .when_all_cooling(all_cooling)
            .rng(rng)
            .max_retry_after((config.max_retry_after).map_or(Duration::from_secs(600), |d| d.get()))
            .store(store);
        b = match &config.adaptive_throttle {
            Switch::Off => b.without_adaptive_throttle(),
            Switch::On(t) => {
                let d = AdaptiveThrottle::default();
                let window = t.window.map_or(d.window, |w| w.get());
                let throttle = AdaptiveThrottle::new(t.k.unwrap_or(d.k), window)
                    .with_min_requests(t.min_requests.unwrap_or(d.min_requests));
                b.adaptive_throttle(throttle)
            }
        };
        // Rules already reported are not handed on, to be reported twice.
        if errors.is_empty() {
            b = b
                .consecutive_failures(consecutive_failures)
                .cooldown(cooldown)
                .failure_ratio_per_model(PerModel::new(failure_ratio))
                .growth_per_model(PerModel::new(growth));
        }
        match b.build() {
            Ok(layer) => errors.into_result((config.enabled != Some(false)).then_some(layer)),
            Err(e) => {
                errors.extend(e);
                Err(errors)
            }
        }
    }
}

fn failure_ratio(
    setting: &Switch<FailureRatioConfig>,
    d: BreakerSettings,
    errors: &mut ConfigError,
) -> Option<FailureRatio> {
    let Switch::On(f) = setting else {
        return None;
    };
    let default = d.failure_ratio.expect("on by default");
    let rule = FailureRatio::new(
        f.ratio.unwrap_or(default.ratio),
        f.window.map_or(default.window, |w| w.get()),
        f.min_calls.unwrap_or(default.min_calls),
    );
    if !(rule.ratio > 0.0 && rule.ratio <= 1.0) {
        errors.push(
            "cooldown.failure_ratio.ratio",
            format!("ratio {} is not in (0, 1]", rule.ratio),
        );
    }
    positive(errors, "cooldown.failure_ratio.window", rule.window, "");
    if rule.min_calls == 0 {
        errors.push("cooldown.failure_ratio.min_calls", "must be at least 1");
    }
    Some(rule)
}

fn growth(
    setting: Option<&GrowthConfig>,
    cooldown: &PerModel<Duration>,
    errors: &mut ConfigError,
) -> Option<Growth> {
    let g = setting.map(|g| Growth {
        factor: g.factor,
        max: g.max.get(),
    })?;
    if !(g.factor.is_finite() && g.factor >= 1.0) {
        errors.push(
            "cooldown.growth.factor",
            format!("factor {} must be a finite number of at least 1", g.factor),
        );
    }
    let longest = (cooldown.overrides().map(|(_, d)| *d))
        .chain([*cooldown.default_value()])
        .max()
        .unwrap_or_default();
    if g.max < longest {
        errors.push(
            "cooldown.growth.max",
            format!("max {:?} is shorter than the cooldown {longest:?}", g.max),
        );
    }
    Some(g)
}
