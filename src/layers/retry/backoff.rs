//! Exponential backoff with a cap and jitter, reusable by any layer that waits
//! between tries.

use std::time::Duration;

use crate::chat::ConfigError;
use crate::clamp;
use crate::rng::SharedRng;

/// How a [`Backoff`] randomises its delays, so that clients that failed
/// together do not retry together.
///
/// See AWS's "Exponential Backoff And Jitter" for the comparison: both
/// jittered variants spread retries far better than none.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Jitter {
    /// The exact curve `base × factor^n`, capped. Only when asked: clients in
    /// lockstep hit a recovering provider at the same instants.
    None,
    /// Uniform between zero and the curve's value (the default).
    #[default]
    Full,
    /// Uniform between `base` and `factor ×` the previous delay, capped:
    /// "decorrelated jitter", which grows on average like the curve but never
    /// waits less than `base`.
    Decorrelated,
}

/// An exponential backoff: the delay before retry `n` (counting from 0) is
/// `base × factor^n`, never more than `cap`, randomised by a [`Jitter`].
///
/// Defaults: base 500 ms, factor 2, cap 8 s, full jitter (the curve of
/// OpenAI's own SDK). Invalid values are rejected when it is built:
///
/// ```
/// use std::time::Duration;
/// use llm_fallback::layers::retry::{Backoff, Jitter};
///
/// let backoff = Backoff::builder()
///     .base(Duration::from_millis(200))
///     .factor(3.0)
///     .cap(Duration::from_secs(5))
///     .no_jitter()
///     .build()
///     .unwrap();
/// assert_eq!(backoff.ceiling(0), Duration::from_millis(200));
/// assert_eq!(backoff.ceiling(2), Duration::from_millis(1800));
/// assert_eq!(backoff.ceiling(9), Duration::from_secs(5));
///
/// let bad = Backoff::builder().factor(0.5).build().unwrap_err();
/// assert!(bad.to_string().contains("0.5"));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    base: Duration,
    factor: f64,
    cap: Duration,
    jitter: Jitter,
}

impl Backoff {
    /// The default first delay: 500 ms.
    pub const DEFAULT_BASE: Duration = Duration::from_millis(500);
    /// The default growth per retry: 2.
    pub const DEFAULT_FACTOR: f64 = 2.0;
    /// The default longest delay: 8 s.
    pub const DEFAULT_CAP: Duration = Duration::from_secs(8);

    /// Starts a backoff from the defaults.
    pub fn builder() -> BackoffBuilder {
        BackoffBuilder {
            backoff: Backoff::default(),
        }
    }

    /// The first delay, before jitter.
    pub fn base(&self) -> Duration {
        self.base
    }

    /// The growth per retry.
    pub fn factor(&self) -> f64 {
        self.factor
    }

    /// The longest delay.
    pub fn cap(&self) -> Duration {
        self.cap
    }

    /// How delays are randomised.
    pub fn jitter(&self) -> Jitter {
        self.jitter
    }

    /// The curve without jitter: `min(cap, base × factor^retry)`, where
    /// `retry` counts from 0 for the first retry. Full jitter stays below it.
    pub fn ceiling(&self, retry: u32) -> Duration {
        let exponent = i32::try_from(retry).unwrap_or(i32::MAX);
        let secs = self.base.as_secs_f64() * self.factor.powi(exponent);
        // 0 × ∞ is NaN: a zero base stays zero.
        clamp::secs_f64(secs, self.cap).unwrap_or(Duration::ZERO)
    }

    /// The delay before retry `retry` (0 for the first retry). `previous` is
    /// the delay waited before the previous retry, which decorrelated jitter
    /// grows from (`None` on the first retry).
    pub fn delay(&self, retry: u32, previous: Option<Duration>, rng: &SharedRng) -> Duration {
        match self.jitter {
            Jitter::None => self.ceiling(retry),
            Jitter::Full => {
                let secs = rng.range_f64(0.0, self.ceiling(retry).as_secs_f64());
                clamp::secs_f64(secs, self.cap).unwrap_or(Duration::ZERO)
            }
            Jitter::Decorrelated => {
                let low = self.base.as_secs_f64();
                let previous = previous.unwrap_or(self.base).as_secs_f64().max(low);
                let high = (previous * self.factor).min(self.cap.as_secs_f64());
                clamp::secs_f64(rng.range_f64(low, high), self.cap).unwrap_or(self.base)
            }
        }
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Self::DEFAULT_BASE,
            factor: Self::DEFAULT_FACTOR,
            cap: Self::DEFAULT_CAP,
            jitter: Jitter::Full,
        }
    }
}

/// Builds a [`Backoff`]; see there for the defaults.
#[derive(Clone, Debug)]
pub struct BackoffBuilder {
    backoff: Backoff,
}

impl BackoffBuilder {
    /// The first delay (default 500 ms). Must be more than zero.
    pub fn base(mut self, base: Duration) -> Self {
        self.backoff.base = base;
        self
    }

    /// The growth per retry (default 2). Must be finite and at least 1.
    pub fn factor(mut self, factor: f64) -> Self {
        self.backoff.factor = factor;
        self
    }

    /// The longest delay (default 8 s). Must not be less than the base.
    pub fn cap(mut self, cap: Duration) -> Self {
        self.backoff.cap = cap;
        self
    }

    /// Sets the jitter.
    pub fn jitter(mut self, jitter: Jitter) -> Self {
        self.backoff.jitter = jitter;
        self
    }

    /// Uniform between zero and the curve (the default).
    pub fn full_jitter(self) -> Self {
        self.jitter(Jitter::Full)
    }

    /// Uniform between `base` and `factor ×` the previous delay.
    pub fn decorrelated_jitter(self) -> Self {
        self.jitter(Jitter::Decorrelated)
    }

    /// The exact curve, no randomness.
    pub fn no_jitter(self) -> Self {
        self.jitter(Jitter::None)
    }

    /// The backoff, or every problem with it.
    pub fn build(self) -> Result<Backoff, ConfigError> {
        let b = self.backoff;
        let mut errors = ConfigError::default();
        if b.base.is_zero() {
            errors.push(
                "backoff.base",
                "the base delay must be more than zero (use max_retries 0 to disable retries)",
            );
        }
        if !b.factor.is_finite() || b.factor < 1.0 {
            errors.push(
                "backoff.factor",
                format!(
                    "factor {} is invalid: it must be a finite number of at least 1",
                    b.factor
                ),
            );
        }
        if b.base > b.cap {
            errors.push(
                "backoff.cap",
                format!("cap {:?} is less than the base delay {:?}", b.cap, b.base),
            );
        }
        errors.into_result(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decorrelated_delays_stay_between_base_and_the_grown_previous_one() {
        let backoff = Backoff::builder()
            .base(Duration::from_millis(100))
            .factor(3.0)
            .cap(Duration::from_secs(2))
            .decorrelated_jitter()
            .build()
            .unwrap();
        let rng = SharedRng::seeded(7);
        let mut previous = None;
        for retry in 0..50 {
            let delay = backoff.delay(retry, previous, &rng);
            let high = (previous.unwrap_or(backoff.base()) * 3).min(backoff.cap());
            assert!(
                delay >= backoff.base() && delay <= high,
                "{delay:?} > {high:?}"
            );
            previous = Some(delay);
        }
    }

    #[test]
    fn huge_retry_numbers_saturate_at_the_cap() {
        let backoff = Backoff::default();
        assert_eq!(backoff.ceiling(u32::MAX), Backoff::DEFAULT_CAP);
    }
}
