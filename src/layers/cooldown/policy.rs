//! What an outcome says about a model, and how a breaker trips and recovers.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::chat::{ChatError, ErrorKind, TimeoutKind};

/// What one outcome says about a model's health.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The model answered: resets the consecutive count, closes a half-open breaker.
    Success,
    /// A failure that counts toward tripping the breaker.
    Failure,
    /// Opens the breaker at once: for the given time (a `Retry-After`), or
    /// for the model's cooldown when `None`.
    Trip(Option<Duration>),
    /// Says nothing about the model (a bad request, the caller's own budget
    /// running out): neither counts nor resets anything.
    Ignore,
}

/// The default judgement of an error, from the failure-class table:
/// [`ErrorKind::counts_for_cooldown`] kinds count toward tripping, and trip
/// at once only when the provider said how long calls will fail: a
/// `Retry-After` (a 429 or a 503 that gives one) opens the breaker for that
/// time. A single 429 *without* `Retry-After` is a scattered fault until the
/// failure ratio says otherwise. [`ErrorKind::trips_cooldown_at_once`] kinds
/// (an unknown model) trip at once. A 401/403 counts like any failure: a bad
/// key is the key's problem, which [`Credentials`](crate::providers::credentials::Credentials)
/// handles per key; on a provider with a single key every call fails, so
/// the consecutive and ratio rules open the breaker within a few calls.
/// A timeout of the caller's total budget is ignored: it says the call ran
/// out of time, not that the model is down.
///
/// Custom classifiers can fall back to it:
///
/// ```
/// use std::time::Duration;
/// use llm_fallback::layers::cooldown::{default_verdict, CooldownLayer, Verdict};
///
/// let layer = CooldownLayer::builder()
///     .classify_with(|e| match e.code() {
///         Some("insufficient_quota") => Verdict::Trip(Some(Duration::from_secs(600))),
///         _ => default_verdict(e),
///     })
///     .build()
///     .unwrap();
/// # let _ = layer;
/// ```
pub fn default_verdict(error: &ChatError) -> Verdict {
    let kind = error.kind();
    if error.timeout_kind() == Some(TimeoutKind::Total) {
        Verdict::Ignore
    } else if kind.trips_cooldown_at_once() {
        Verdict::Trip(error.retry_after())
    } else if kind.counts_for_cooldown() {
        counting(error)
    } else {
        Verdict::Ignore
    }
}

/// A counting failure: a trip for the provider's `Retry-After` when it gave one.
fn counting(error: &ChatError) -> Verdict {
    match error.retry_after() {
        Some(wait) => Verdict::Trip(Some(wait)),
        None => Verdict::Failure,
    }
}

/// How a failure ratio trips a breaker: at least `min_calls` calls in the
/// last `window`, and failures making up at least `ratio` of them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FailureRatio {
    /// Share of failures, in `(0, 1]`.
    pub ratio: f64,
    /// How far back calls are counted (in ten buckets, so the window rolls
    /// forward a tenth at a time).
    pub window: Duration,
    /// Fewer calls than this in the window never trip: one failure out of one
    /// call is not a trend.
    pub min_calls: u32,
}

impl FailureRatio {
    /// A rule tripping at `ratio` failures over `window`, given `min_calls` calls.
    pub fn new(ratio: f64, window: Duration, min_calls: u32) -> Self {
        FailureRatio {
            ratio,
            window,
            min_calls,
        }
    }
}

/// How the cooldown grows each time a probe fails: multiplied by `factor`,
/// up to `max`. A probe success resets it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Growth {
    /// At least 1.
    pub factor: f64,
    /// The longest cooldown.
    pub max: Duration,
}

/// The breaker settings of one model, as a [`CooldownStore`](super::CooldownStore) receives them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BreakerSettings {
    /// Consecutive counting failures that trip the breaker; 0 turns this rule off.
    pub consecutive_failures: u32,
    /// The failure-ratio rule, if any.
    pub failure_ratio: Option<FailureRatio>,
    /// How long the breaker stays open before a probe is let through.
    pub cooldown: Duration,
    /// How the cooldown grows after failed probes; `None` keeps it constant.
    pub growth: Option<Growth>,
}

impl BreakerSettings {
    /// The cooldown after a failed probe, when the last one was `current`.
    pub fn next_cooldown(&self, current: Duration) -> Duration {
        match self.growth {
            None => self.cooldown,
            // `Duration::mul_f64` panics on overflow or a NaN factor.
            Some(growth) => {
                let secs = current.as_secs_f64() * growth.factor;
                crate::clamp::secs_f64(secs, growth.max).unwrap_or(self.cooldown)
            }
        }
    }
}

impl Default for BreakerSettings {
    /// 5 consecutive failures, or half of at least 20 calls over 30 s; open for
    /// 5 s; no growth.
    fn default() -> Self {
        BreakerSettings {
            consecutive_failures: 5,
            failure_ratio: Some(FailureRatio::new(0.5, Duration::from_secs(30), 20)),
            cooldown: Duration::from_secs(5),
            growth: None,
        }
    }
}

/// Turns an error into a [`Verdict`].
#[derive(Clone)]
pub(super) enum Classifier {
    Default,
    Kinds(KindSets),
    Custom(Arc<dyn Fn(&ChatError) -> Verdict + Send + Sync>),
}

impl Classifier {
    pub(super) fn verdict(&self, error: &ChatError) -> Verdict {
        match self {
            Classifier::Default => default_verdict(error),
            Classifier::Kinds(sets) => sets.verdict(error),
            Classifier::Custom(f) => f(error),
        }
    }
}

impl fmt::Debug for Classifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Classifier::Default => f.write_str("Default"),
            Classifier::Kinds(sets) => sets.fmt(f),
            Classifier::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

/// Which kinds count and which trip at once, as bit sets over [`ErrorKind::ALL`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct KindSets {
    pub(super) counting: u32,
    pub(super) at_once: u32,
}

impl KindSets {
    /// The table's sets, to start overriding from.
    pub(super) fn table() -> KindSets {
        let set = |included: fn(ErrorKind) -> bool| {
            Self::of(ErrorKind::ALL.into_iter().filter(|k| included(*k)))
        };
        KindSets {
            counting: set(ErrorKind::counts_for_cooldown),
            at_once: set(ErrorKind::trips_cooldown_at_once),
        }
    }

    pub(super) fn of(kinds: impl IntoIterator<Item = ErrorKind>) -> u32 {
        kinds.into_iter().fold(0, |set, kind| set | bit(kind))
    }

    fn verdict(&self, error: &ChatError) -> Verdict {
        let kind = bit(error.kind());
        if error.timeout_kind() == Some(TimeoutKind::Total) {
            Verdict::Ignore
        } else if self.at_once & kind != 0 {
            Verdict::Trip(error.retry_after())
        } else if self.counting & kind != 0 {
            counting(error)
        } else {
            Verdict::Ignore
        }
    }
}

impl fmt::Debug for KindSets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = |set: u32| {
            ErrorKind::ALL
                .into_iter()
                .filter(move |k| set & bit(*k) != 0)
                .map(ErrorKind::as_str)
        };
        f.debug_struct("Kinds")
            .field("counting", &names(self.counting).collect::<Vec<_>>())
            .field("at_once", &names(self.at_once).collect::<Vec<_>>())
            .finish()
    }
}

fn bit(kind: ErrorKind) -> u32 {
    ErrorKind::ALL
        .iter()
        .position(|k| *k == kind)
        .map_or(0, |i| 1 << i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cooldown_growth_saturates_at_its_max_and_survives_a_nan_factor() {
        let settings = |factor| BreakerSettings {
            growth: Some(Growth {
                factor,
                max: Duration::MAX,
            }),
            ..BreakerSettings::default()
        };
        let huge = Duration::from_secs(u64::MAX / 2);
        assert_eq!(settings(4.0).next_cooldown(huge), Duration::MAX);
        assert_eq!(
            settings(f64::NAN).next_cooldown(huge),
            BreakerSettings::default().cooldown
        );
        assert_eq!(
            settings(2.0).next_cooldown(Duration::from_secs(3)),
            Duration::from_secs(6)
        );
    }
}
