//! A first-token deadline learned per model: a multiple of a high
//! percentile of the model's own recent times to first token, capped by
//! the configured deadline.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::chat::ConfigError;
use crate::layers::hedge::LearnedDelay;

/// A stream's first-token deadline learned per model, so that the
/// configured one (60 s by default) is a ceiling, not the usual cost of a
/// silent provider.
///
/// Once a model has answered enough streams, its attempts get
/// `multiple × percentile` of its recent times to first token, at least
/// `floor`, and never more than the configured first-token deadline. A
/// model that is seldom slow then costs seconds when it stops answering,
/// instead of the whole deadline; the call moves on to the next candidate.
///
/// The attempt layer learns it from what it sees:
///
/// - a stream that reached its first token, after the time it took;
/// - an attempt cut by its first-token deadline, after the time it ran: a
///   lower bound of its real time, so a model that became slower than its
///   learned deadline raises it (by up to `multiple` per window of cut
///   calls), instead of being cut short for ever.
///
/// Attempts that fail otherwise, or are dropped (a hedge won, the caller
/// left), tell nothing about the time to first token and are not counted.
///
/// Defaults: 4 × the 95th percentile of the last 200 first tokens, trusted
/// after 20, never below 1 s. A model with a p95 of 800 ms gets a 3.2 s
/// deadline; one whose p95 is 20 s keeps the configured deadline (when that
/// is below 80 s).
///
/// ```
/// use std::time::Duration;
/// use llm_fallback::layers::timeout::AdaptiveFirstToken;
///
/// let adaptive = AdaptiveFirstToken::builder().multiple(3.0).min_observations(2).build().unwrap();
/// let configured = Duration::from_secs(30);
/// assert_eq!(adaptive.deadline("openai/gpt-4o", configured), configured);
/// adaptive.observe("openai/gpt-4o", Duration::from_millis(500));
/// adaptive.observe("openai/gpt-4o", Duration::from_millis(700));
/// assert_eq!(adaptive.deadline("openai/gpt-4o", configured), Duration::from_millis(2100));
/// ```
#[derive(Clone)]
pub struct AdaptiveFirstToken {
    learned: Arc<LearnedDelay>,
    multiple: f64,
    floor: Duration,
}

impl AdaptiveFirstToken {
    /// The default multiple of the learned percentile: 4.
    pub const DEFAULT_MULTIPLE: f64 = 4.0;
    /// The default shortest learned deadline: 1 s.
    pub const DEFAULT_FLOOR: Duration = Duration::from_secs(1);

    /// A builder with the defaults.
    pub fn builder() -> AdaptiveFirstTokenBuilder {
        AdaptiveFirstTokenBuilder {
            multiple: Self::DEFAULT_MULTIPLE,
            floor: Self::DEFAULT_FLOOR,
            percentile: 0.95,
            min_observations: 20,
            window: 200,
        }
    }

    /// The first-token deadline of an attempt to `model` whose configured
    /// one is `configured`.
    pub fn deadline(&self, model: &str, configured: Duration) -> Duration {
        match self.learned.delay(model) {
            // Saturates: a huge percentile times the multiple is the ceiling.
            Some(p) => Duration::try_from_secs_f64(p.as_secs_f64() * self.multiple)
                .unwrap_or(Duration::MAX)
                .max(self.floor)
                .min(configured),
            None => configured,
        }
    }

    /// Notes that an attempt to `model` reached its first token after
    /// `took` (or was cut by its first-token deadline then).
    pub fn observe(&self, model: &str, took: Duration) {
        self.learned.observe(model, took);
    }
}

impl fmt::Debug for AdaptiveFirstToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdaptiveFirstToken")
            .field("multiple", &self.multiple)
            .field("floor", &self.floor)
            .field("learned", &self.learned)
            .finish()
    }
}

/// Builds an [`AdaptiveFirstToken`]; mistakes are reported by
/// [`build`](Self::build), together.
#[derive(Clone, Debug)]
pub struct AdaptiveFirstTokenBuilder {
    multiple: f64,
    floor: Duration,
    percentile: f64,
    min_observations: usize,
    window: usize,
}

impl AdaptiveFirstTokenBuilder {
    /// The deadline as a multiple of the learned percentile, at least 1
    /// (default 4).
    pub fn multiple(mut self, multiple: f64) -> Self {
        self.multiple = multiple;
        self
    }

    /// The shortest learned deadline (default 1 s).
    pub fn floor(mut self, floor: Duration) -> Self {
        self.floor = floor;
        self
    }

    /// The percentile of first-token times learned, above 0 and at most 1
    /// (default 0.95).
    pub fn percentile(mut self, p: f64) -> Self {
        self.percentile = p;
        self
    }

    /// How many first tokens of a model are needed before its deadline is
    /// learned (default 20), at least 1 and at most the window.
    pub fn min_observations(mut self, n: usize) -> Self {
        self.min_observations = n;
        self
    }

    /// How many of a model's most recent first tokens are kept (default
    /// 200, at most 4096).
    pub fn window(mut self, n: usize) -> Self {
        self.window = n;
        self
    }

    /// The deadline, or every mistake in the settings (named
    /// `timeout.adaptive_first_token.<setting>`).
    pub fn build(self) -> Result<AdaptiveFirstToken, ConfigError> {
        let mut errors = ConfigError::default();
        if !(self.multiple >= 1.0 && self.multiple.is_finite()) {
            errors.push(
                "timeout.adaptive_first_token.multiple",
                format!("multiple {} must be at least 1", self.multiple),
            );
        }
        // The estimator's own bounds stay wide: the floor applies to the
        // deadline, the configured deadline is the ceiling.
        let learned = LearnedDelay::builder()
            .percentile(self.percentile)
            .floor(Duration::ZERO)
            .ceiling(Duration::MAX)
            .min_observations(self.min_observations)
            .window(self.window)
            .build_under("timeout.adaptive_first_token");
        match learned {
            Ok(learned) => errors.into_result(AdaptiveFirstToken {
                learned: Arc::new(learned),
                multiple: self.multiple,
                floor: self.floor,
            }),
            Err(e) => {
                errors.extend(e);
                Err(errors)
            }
        }
    }
}
