//! `[retry]`: the section of a config file, and the layer it builds.

use std::time::Duration;

use serde::de::Deserializer;
use serde::{Deserialize, Serialize};

use super::{Backoff, Jitter, RetryBudget, RetryLayer};
use crate::chat::{ConfigError, PerModel, Problem};
use crate::rng::SharedRng;
use crate::settings::{
    from_value, key_path, positive, HumanDuration, PerModelSetting, Scope, Switch,
};

/// `[retry]`: retries of the same model.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct RetryConfig {
    /// Retries per call, per model; 0 turns them off (default 2).
    pub max_retries: PerModelSetting<u32>,
    /// The backoff between retries, per model.
    pub backoff: PerModelSetting<BackoffConfig>,
    /// The longest `Retry-After` worth waiting for (default 10 s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_retry_after: Option<HumanDuration>,
    /// The shared retry budget (`false` for none).
    pub budget: Switch<BudgetConfig>,
}

/// An exponential backoff; unset fields keep the default's (500 ms, ×2,
/// 8 s cap, full jitter). A plain number is the factor (Not Diamond's `backoff`).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct BackoffConfig {
    /// The first delay.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base: Option<HumanDuration>,
    /// The growth per retry, at least 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub factor: Option<f64>,
    /// The longest delay.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cap: Option<HumanDuration>,
    /// `full`, `decorrelated` or `none`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jitter: Option<JitterSetting>,
}

impl<'de> Deserialize<'de> for BackoffConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Table {
            base: Option<HumanDuration>,
            factor: Option<f64>,
            cap: Option<HumanDuration>,
            jitter: Option<JitterSetting>,
        }
        let value = serde_json::Value::deserialize(d)?;
        if let Some(factor) = value.as_f64() {
            return Ok(BackoffConfig {
                factor: Some(factor),
                ..Default::default()
            });
        }
        let t: Table = from_value(value)?;
        Ok(BackoffConfig {
            base: t.base,
            factor: t.factor,
            cap: t.cap,
            jitter: t.jitter,
        })
    }
}

/// How backoff delays are randomised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JitterSetting {
    /// Uniform between zero and the curve (the default).
    Full,
    /// Uniform between the base and `factor ×` the previous delay.
    Decorrelated,
    /// The exact curve.
    None,
}

/// A budget of extra calls: `ratio` extra calls per call over `window`, plus
/// `min_per_second`. `[retry.budget]` spends it on retries (defaults 10 s,
/// 10, 0.2), `[fallback.hedge.budget]` on hedges (defaults 10 s, 1, 0.1).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct BudgetConfig {
    /// How far back calls are counted (1 s to 60 s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<HumanDuration>,
    /// Extra calls allowed per second in any case.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_per_second: Option<u32>,
    /// Extra calls allowed per call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio: Option<f32>,
}

impl BudgetConfig {
    /// Its window, floor and ratio, each unset one taken from `defaults`.
    pub(crate) fn or(&self, defaults: (Duration, u32, f32)) -> (Duration, u32, f32) {
        (
            self.window.map_or(defaults.0, HumanDuration::get),
            self.min_per_second.unwrap_or(defaults.1),
            self.ratio.unwrap_or(defaults.2),
        )
    }
}

impl RetryLayer {
    /// The layer `[retry]` describes, model keys checked against `scope`,
    /// jitter drawn from `rng`.
    pub fn from_config(
        config: &RetryConfig,
        scope: &Scope,
        rng: SharedRng,
    ) -> Result<RetryLayer, ConfigError> {
        let mut errors = ConfigError::default();
        let max_retries = scope.per_model("retry.max_retries", &config.max_retries, 2, &mut errors);
        let backoff = backoffs(&config.backoff, scope, &mut errors);
        let max_retry_after = (config.max_retry_after).map_or(Duration::from_secs(10), |d| d.get());
        positive(&mut errors, "retry.max_retry_after", max_retry_after, "");
        let budget = match &config.budget {
            Switch::Off => None,
            Switch::On(b) => {
                let (window, min_per_second, ratio) = b.or((Duration::from_secs(10), 10, 0.2));
                match RetryBudget::new(window, min_per_second, ratio) {
                    Ok(budget) => Some(budget),
                    Err(e) => {
                        errors.extend(e);
                        None
                    }
                }
            }
        };
        let builder = RetryLayer::builder()
            .max_retries(max_retries)
            .backoff(backoff)
            .max_retry_after(max_retry_after)
            .rng(rng);
        let built = match budget {
            Some(budget) => builder.budget(budget),
            None => builder.no_budget(),
        }
        .build();
        match built {
            Ok(layer) => errors.into_result(layer),
            Err(e) => {
                errors.extend(e);
                Err(errors)
            }
        }
    }
}

/// The backoff of each model: its own fields over the default's.
fn backoffs(
    setting: &PerModelSetting<BackoffConfig>,
    scope: &Scope,
    errors: &mut ConfigError,
) -> PerModel<Backoff> {
    let path = "retry.backoff";
    let settings = scope.per_model(path, setting, BackoffConfig::default(), errors);
    let base = settings.default_value().clone();
    let (default, reported) = backoff(path, &base, &BackoffConfig::default(), &[], errors);
    let mut per = PerModel::new(default);
    for (model, s) in settings.overrides() {
        let at = format!("{path}.models.{}", key_path(model));
        per.set(model, backoff(&at, s, &base, &reported, errors).0);
    }
    per
}

/// `s` over `base`: the fields `s` leaves out are `base`'s. Problems
/// already in `reported` (those of the default) are not repeated; the ones
/// found are returned.
fn backoff(
    path: &str,
    s: &BackoffConfig,
    base: &BackoffConfig,
    reported: &[Problem],
    errors: &mut ConfigError,
) -> (Backoff, Vec<Problem>) {
    let d = Backoff::default();
    let jitter = match s.jitter.or(base.jitter) {
        None | Some(JitterSetting::Full) => Jitter::Full,
        Some(JitterSetting::Decorrelated) => Jitter::Decorrelated,
        Some(JitterSetting::None) => Jitter::None,
    };
    let built = Backoff::builder()
        .base(s.base.or(base.base).map_or(d.base(), |b| b.get()))
        .factor(s.factor.or(base.factor).unwrap_or(d.factor()))
        .cap(s.cap.or(base.cap).map_or(d.cap(), |c| c.get()))
        .jitter(jitter)
        .build();
    match built {
        Ok(backoff) => (backoff, Vec::new()),
        Err(e) => {
            let found = e.problems().to_vec();
            for p in found.iter().filter(|p| !reported.contains(p)) {
                // The builder's paths are `backoff.<field>`.
                let field = p.path.strip_prefix("backoff").unwrap_or(&p.path);
                errors.push(format!("{path}{field}"), &p.message);
            }
            (d, found)
        }
    }
}
