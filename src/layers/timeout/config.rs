//! `[timeout]`: the section of a config file, and the two timeout layers
//! it builds (the whole call's budget, and each attempt's deadlines).

use std::collections::BTreeSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{AdaptiveFirstToken, StreamDeadlines, TimeoutLayer, DEFAULT_ATTEMPT, DEFAULT_CONNECT};
use crate::chat::{ConfigError, PerModel};
use crate::settings::{key_path, positive, HumanDuration, PerModelSetting, Scope, TimeLimit};

/// `[timeout]`: the total budget of a call, the deadline of each attempt,
/// and the deadlines of streamed answers
/// ([`StreamDeadlines`](crate::layers::timeout::StreamDeadlines)), each per model and each
/// `"none"` to switch it off.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct TimeoutConfig {
    /// The whole call's budget, fallbacks and retries included (default: none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<HumanDuration>,
    /// Each attempt's deadline, per model; for a stream, the time to its
    /// first token (default: 60 s for a complete answer,
    /// [`DEFAULT_ATTEMPT`](crate::layers::timeout::DEFAULT_ATTEMPT); none for a
    /// stream, which `first_token` bounds).
    pub attempt: PerModelSetting<TimeLimit>,
    /// Streams: connect plus response head, per model (default 15 s).
    pub headers: PerModelSetting<TimeLimit>,
    /// Streams: from the attempt's start to the first content chunk, per
    /// model (default 60 s).
    pub first_token: PerModelSetting<TimeLimit>,
    /// Streams: the longest gap between two chunks, per model (default 30 s).
    pub idle: PerModelSetting<TimeLimit>,
    /// Streams: from the attempt's start to the stream's end, per model
    /// (default: none).
    pub stream_total: PerModelSetting<TimeLimit>,
    /// Streams: learn each model's first-token deadline from its own
    /// recent first tokens, `first_token` becoming its ceiling (default:
    /// off; `{}` for [`AdaptiveFirstToken`]'s defaults).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub adaptive_first_token: Option<AdaptiveConfig>,
}

/// `[timeout] adaptive_first_token`: a learned first-token deadline
/// ([`AdaptiveFirstToken`]); unset fields keep its defaults.
///
/// ```toml
/// [timeout]
/// first_token = "30s"    # the ceiling
/// adaptive_first_token = { multiple = 4, floor = "1s", percentile = 0.95, min_observations = 20, window = 200 }
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct AdaptiveConfig {
    /// The deadline as a multiple of the learned percentile (at least 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub multiple: Option<f64>,
    /// The shortest learned deadline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub floor: Option<HumanDuration>,
    /// The percentile of first-token times learned (0 to 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percentile: Option<f64>,
    /// First tokens of a model needed before its deadline is learned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_observations: Option<usize>,
    /// First tokens kept per model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<usize>,
}

impl AdaptiveFirstToken {
    /// The learned deadline `adaptive_first_token` describes; every
    /// mistake at once, under `timeout.adaptive_first_token`.
    pub fn from_config(config: &AdaptiveConfig) -> Result<AdaptiveFirstToken, ConfigError> {
        let mut builder = AdaptiveFirstToken::builder();
        if let Some(m) = config.multiple {
            builder = builder.multiple(m);
        }
        if let Some(floor) = config.floor {
            builder = builder.floor(floor.get());
        }
        if let Some(p) = config.percentile {
            builder = builder.percentile(p);
        }
        if let Some(n) = config.min_observations {
            builder = builder.min_observations(n);
        }
        if let Some(n) = config.window {
            builder = builder.window(n);
        }
        builder.build()
    }
}

impl TimeoutLayer {
    /// The whole call's budget of `[timeout]`, if it sets one.
    pub fn total_from_config(config: &TimeoutConfig) -> Result<Option<TimeoutLayer>, ConfigError> {
        let mut errors = ConfigError::default();
        let total = config.total.map(HumanDuration::get);
        if let Some(total) = total {
            let hint = " (leave it out for no budget)";
            positive(&mut errors, "timeout.total", total, hint);
        }
        errors.into_result(total.map(TimeoutLayer::total))
    }

    /// Each attempt's deadlines of `[timeout]`, model keys checked against
    /// `scope`; `None` when no model has any. Complete answers default to
    /// [`DEFAULT_ATTEMPT`] so that no call waits forever.
    pub fn attempt_from_config(
        config: &TimeoutConfig,
        scope: &Scope,
    ) -> Result<Option<TimeoutLayer>, ConfigError> {
        let mut errors = ConfigError::default();
        let limits = |path: &str,
                      setting: &PerModelSetting<TimeLimit>,
                      builtin: TimeLimit,
                      errors: &mut ConfigError| {
            let per = scope.per_model(path, setting, builtin, errors);
            let any = check_limits(path, &per, errors);
            (per.map(TimeLimit::get), any)
        };
        let (attempt, any) = limits(
            "timeout.attempt",
            &config.attempt,
            TimeLimit::Unlimited,
            &mut errors,
        );
        let default = match config.attempt.default {
            Some(_) => *attempt.default_value(),
            None => Some(DEFAULT_ATTEMPT),
        };
        let mut complete = PerModel::new(default);
        for (model, limit) in attempt.overrides() {
            complete.set(model, *limit);
        }
        let d = StreamDeadlines::new();
        let builtin = |o: Option<Duration>| o.map_or(TimeLimit::Unlimited, TimeLimit::After);
        let fields = [
            ("timeout.headers", &config.headers, d.headers()),
            ("timeout.first_token", &config.first_token, d.first_token()),
            ("timeout.idle", &config.idle, d.idle()),
            ("timeout.stream_total", &config.stream_total, d.total()),
        ];
        let per = fields
            .map(|(path, setting, default)| limits(path, setting, builtin(default), &mut errors).0);
        let streams = stream_deadlines(&per);
        let none = StreamDeadlines::none();
        let unset = !any
            && *streams.default_value() == none
            && streams.overrides().all(|(_, d)| *d == none)
            && complete.default_value().is_none()
            && complete.overrides().all(|(_, d)| d.is_none());
        let adaptive = config.adaptive_first_token.as_ref().and_then(|a| {
            let bounded = streams.default_value().first_token().is_some()
                || streams.overrides().any(|(_, d)| d.first_token().is_some());
            if !bounded {
                errors.push(
                    "timeout.adaptive_first_token",
                    "no model has a first_token deadline, which is its ceiling \
                     (set timeout.first_token, or leave adaptive_first_token out)",
                );
            }
            AdaptiveFirstToken::from_config(a)
                .map_err(|e| errors.extend(e))
                .ok()
        });
        let attempt = if any { attempt } else { PerModel::new(None) };
        let layer = (!unset).then(|| {
            let layer = TimeoutLayer::per_model(attempt)
                .with_stream_deadlines(streams)
                .with_complete_answers(complete);
            match adaptive {
                Some(adaptive) => layer.with_adaptive_first_token(adaptive),
                None => layer,
            }
        });
        errors.into_result(layer)
    }
}

impl TimeoutConfig {
    /// The effective default deadlines, in one line (for `--check`).
    pub(crate) fn summary(&self) -> String {
        let show = |d: Option<Duration>| {
            d.map_or("none".to_owned(), |d| HumanDuration::from(d).to_string())
        };
        let field = |s: &PerModelSetting<TimeLimit>, builtin: Option<Duration>| {
            s.default.map_or(builtin, TimeLimit::get)
        };
        let d = StreamDeadlines::new();
        let stream_attempt = self.attempt.default.and_then(TimeLimit::get);
        let complete = self
            .attempt
            .default
            .map_or(Some(DEFAULT_ATTEMPT), TimeLimit::get);
        format!(
            "total {}; attempt: complete answers {}, streams {}; \
             streams: headers {}, first token {}{}, idle {}, total {}; connect {}",
            show(self.total.map(HumanDuration::get)),
            show(complete),
            show(stream_attempt),
            show(field(&self.headers, d.headers())),
            show(field(&self.first_token, d.first_token())),
            self.adaptive_summary(),
            show(field(&self.idle, d.idle())),
            show(field(&self.stream_total, d.total())),
            show(Some(DEFAULT_CONNECT)),
        )
    }

    /// How the first-token deadline is learned, if it is, for the summary.
    fn adaptive_summary(&self) -> String {
        let Some(a) = &self.adaptive_first_token else {
            return String::new();
        };
        // Rounded: 0.9 × 100 is 90.00000000000001 in floating point.
        let p = (a.percentile.unwrap_or(0.95) * 1000.0).round() / 10.0;
        let floor = a
            .floor
            .map_or(AdaptiveFirstToken::DEFAULT_FLOOR, HumanDuration::get);
        format!(
            " at most (learned: {} x p{p} of its first tokens, at least {})",
            a.multiple.unwrap_or(AdaptiveFirstToken::DEFAULT_MULTIPLE),
            HumanDuration::from(floor),
        )
    }
}

/// The stream deadlines of each model: its own value of each field, else
/// the field's default.
fn stream_deadlines(per: &[PerModel<Option<Duration>>; 4]) -> PerModel<StreamDeadlines> {
    let at = |model: Option<&str>| {
        let get = |p: &PerModel<Option<Duration>>| match model {
            Some(m) => *p.get(m),
            None => *p.default_value(),
        };
        StreamDeadlines::none()
            .with_headers(get(&per[0]))
            .with_first_token(get(&per[1]))
            .with_idle(get(&per[2]))
            .with_total(get(&per[3]))
    };
    let mut deadlines = PerModel::new(at(None));
    let models: BTreeSet<&str> = (per.iter())
        .flat_map(|p| p.overrides())
        .map(|(m, _)| m)
        .collect();
    for model in models {
        deadlines.set(model, at(Some(model)));
    }
    deadlines
}

/// Checks each limit of a per-model time limit; whether any is set.
fn check_limits(path: &str, limits: &PerModel<TimeLimit>, errors: &mut ConfigError) -> bool {
    let mut any = false;
    let mut check = |at: &str, limit: &TimeLimit| {
        if let TimeLimit::After(d) = limit {
            any = true;
            positive(errors, at, *d, " (use \"none\" for no deadline)");
        }
    };
    check(path, limits.default_value());
    for (model, limit) in limits.overrides() {
        check(&format!("{path}.models.{}", key_path(model)), limit);
    }
    any
}
