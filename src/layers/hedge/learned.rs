//! A hedge delay learned per model from the time its calls took to answer.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard, RwLock};
use std::time::Duration;

use crate::chat::ConfigError;
use crate::store::of_provider;

/// How a hedge delay is learned per model: a high percentile of the time
/// its recent calls took to answer (to their first content chunk for a
/// stream), clamped between a floor and a ceiling, trusted once enough
/// calls were seen. Until then, and for a model never seen, the
/// [`Hedge`](super::Hedge)'s fixed delay applies.
///
/// Why a percentile: hedging at the p95 of a model's own answer times
/// hedges about one call in twenty of a healthy model (the budget caps the
/// rest), and a model that slows down is hedged at once, as its calls pass
/// the delay learned when it was well.
///
/// Memory is bounded: `window` durations per model (the most recent ones),
/// for the models of the routes only. The calls that served are observed,
/// and so are racers cancelled past their delay, at the time they ran (a
/// lower bound of their answer time): without them, the slow answers that
/// hedging cuts short would never be seen, and the delay would slide down
/// call after call.
///
/// Defaults: the 95th percentile of the last 200 answers, trusted after 20,
/// between 50 ms and 10 s.
///
/// ```
/// use std::time::Duration;
/// use llm_fallback::layers::hedge::LearnedDelay;
///
/// let learned = LearnedDelay::builder()
///     .percentile(0.9)
///     .floor(Duration::from_millis(100))
///     .ceiling(Duration::from_secs(5))
///     .build()
///     .unwrap();
/// # let _ = learned;
/// let bad = LearnedDelay::builder().percentile(1.5).build().unwrap_err();
/// assert!(bad.to_string().contains("percentile"));
/// ```
pub struct LearnedDelay {
    settings: Settings,
    models: RwLock<HashMap<String, Mutex<Samples>>>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct Settings {
    percentile: f64,
    floor: Duration,
    ceiling: Duration,
    min_observations: usize,
    window: usize,
}

/// The largest window: 4096 durations (32 KiB) per model.
const MAX_WINDOW: usize = 4096;

/// The recent answer times of one model, and the estimate from them.
#[derive(Debug)]
struct Samples {
    /// A ring of the last `window` durations, in microseconds.
    ring: Vec<u64>,
    next: usize,
    /// Observations since the estimate was computed.
    stale: usize,
    estimate: Option<Duration>,
}

impl LearnedDelay {
    /// A builder with the defaults.
    pub fn builder() -> LearnedDelayBuilder {
        LearnedDelayBuilder {
            settings: Settings {
                percentile: 0.95,
                floor: Duration::from_millis(50),
                ceiling: Duration::from_secs(10),
                min_observations: 20,
                window: 200,
            },
        }
    }

    /// The learned delay for `model`, once it has enough observations.
    pub fn delay(&self, model: &str) -> Option<Duration> {
        let models = self.models.read().unwrap_or_else(|e| e.into_inner());
        let samples = models.get(model)?;
        let estimate = lock(samples).estimate;
        estimate
    }

    /// Whether `other` learns the same way (percentile, bounds, window).
    pub(crate) fn same_settings(&self, other: &LearnedDelay) -> bool {
        self.settings == other.settings
    }

    /// Forgets what was learned of `provider`'s models (`provider/…`): a
    /// reload changed its endpoint or key.
    pub(crate) fn forget_provider(&self, provider: &str) {
        let mut models = self.models.write().unwrap_or_else(|e| e.into_inner());
        models.retain(|id, _| !of_provider(id, provider));
    }

    /// Notes that a call to `model` answered after `took`.
    pub fn observe(&self, model: &str, took: Duration) {
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        {
            let models = self.models.read().unwrap_or_else(|e| e.into_inner());
            if let Some(samples) = models.get(model) {
                lock(samples).push(micros, &self.settings);
                return;
            }
        }
        let mut models = self.models.write().unwrap_or_else(|e| e.into_inner());
        let samples = models
            .entry(model.to_owned())
            .or_insert_with(|| Mutex::new(Samples::new(self.settings.window)));
        lock(samples).push(micros, &self.settings);
    }
}

impl Samples {
    fn new(window: usize) -> Self {
        Samples {
            ring: Vec::with_capacity(window),
            next: 0,
            stale: 0,
            estimate: None,
        }
    }

    fn push(&mut self, micros: u64, settings: &Settings) {
        if self.ring.len() < settings.window {
            self.ring.push(micros);
        } else if let Some(slot) = self.ring.get_mut(self.next) {
            *slot = micros;
        }
        self.next = (self.next + 1) % settings.window.max(1);
        self.stale += 1;
        // Sorting a copy costs O(n log n): do it every window/16 answers,
        // and at once while the estimate is being earned.
        let every = (settings.window / 16).max(1);
        if self.ring.len() >= settings.min_observations
            && (self.estimate.is_none() || self.stale >= every)
        {
            self.stale = 0;
            self.estimate = Some(percentile(&self.ring, settings));
        }
    }
}

/// The nearest-rank percentile of `ring`, clamped to the floor and ceiling.
fn percentile(ring: &[u64], settings: &Settings) -> Duration {
    let mut sorted = ring.to_vec();
    sorted.sort_unstable();
    let rank = (settings.percentile * sorted.len() as f64).ceil() as usize;
    let micros = sorted
        .get(rank.saturating_sub(1).min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or(0);
    Duration::from_micros(micros).clamp(settings.floor, settings.ceiling)
}

fn lock(samples: &Mutex<Samples>) -> MutexGuard<'_, Samples> {
    // A panic while holding it cannot leave a ring inconsistent.
    samples.lock().unwrap_or_else(|e| e.into_inner())
}

impl fmt::Debug for LearnedDelay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LearnedDelay")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// Builds a [`LearnedDelay`]; mistakes are reported by
/// [`build`](Self::build), together.
#[derive(Clone, Debug)]
pub struct LearnedDelayBuilder {
    settings: Settings,
}

impl LearnedDelayBuilder {
    /// The percentile of answer times to hedge at, above 0 and at most 1
    /// (default 0.95).
    pub fn percentile(mut self, p: f64) -> Self {
        self.settings.percentile = p;
        self
    }

    /// The shortest learned delay (default 50 ms).
    pub fn floor(mut self, floor: Duration) -> Self {
        self.settings.floor = floor;
        self
    }

    /// The longest learned delay (default 10 s).
    pub fn ceiling(mut self, ceiling: Duration) -> Self {
        self.settings.ceiling = ceiling;
        self
    }

    /// How many answers of a model are needed before its learned delay is
    /// used (default 20), at least 1 and at most the window.
    pub fn min_observations(mut self, n: usize) -> Self {
        self.settings.min_observations = n;
        self
    }

    /// How many of a model's most recent answers are kept (default 200, at
    /// most 4096).
    pub fn window(mut self, n: usize) -> Self {
        self.settings.window = n;
        self
    }

    /// The estimator, or every mistake in the settings.
    pub fn build(self) -> Result<LearnedDelay, ConfigError> {
        self.build_under("hedge.learned")
    }

    /// [`build`](Self::build), naming mistakes `<prefix>.<setting>`.
    pub(crate) fn build_under(self, prefix: &str) -> Result<LearnedDelay, ConfigError> {
        let s = self.settings;
        let mut errors = ConfigError::default();
        if !(s.percentile > 0.0 && s.percentile <= 1.0) {
            errors.push(
                format!("{prefix}.percentile"),
                format!("percentile {} must be above 0 and at most 1", s.percentile),
            );
        }
        if s.floor > s.ceiling {
            errors.push(
                format!("{prefix}.floor"),
                format!("floor {:?} is above the ceiling {:?}", s.floor, s.ceiling),
            );
        }
        if s.window == 0 || s.window > MAX_WINDOW {
            errors.push(
                format!("{prefix}.window"),
                format!("window {} must be between 1 and {MAX_WINDOW}", s.window),
            );
        }
        if s.min_observations == 0 || s.min_observations > s.window {
            errors.push(
                format!("{prefix}.min_observations"),
                format!(
                    "min_observations {} must be between 1 and the window ({})",
                    s.min_observations, s.window
                ),
            );
        }
        errors.into_result(())?;
        Ok(LearnedDelay {
            settings: s,
            models: RwLock::new(HashMap::new()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SharedRng;

    #[test]
    fn converges_to_the_configured_percentile_of_a_seeded_distribution() {
        let learned = LearnedDelay::builder()
            .percentile(0.9)
            .window(1000)
            .min_observations(50)
            .build()
            .unwrap();
        let rng = SharedRng::seeded(15);
        // Uniform between 100 and 1100 ms: the 90th percentile is 1000 ms.
        for _ in 0..5000 {
            let took = Duration::from_millis(rng.range_f64(100.0, 1100.0) as u64);
            learned.observe("a/m", took);
        }
        let delay = learned.delay("a/m").unwrap();
        let error = delay.as_secs_f64() - 1.0;
        assert!(error.abs() < 0.03, "{delay:?}");
    }

    #[test]
    fn is_trusted_only_after_enough_observations_and_stays_within_its_bounds() {
        let learned = LearnedDelay::builder()
            .min_observations(3)
            .floor(Duration::from_millis(200))
            .ceiling(Duration::from_secs(2))
            .build()
            .unwrap();
        learned.observe("a/m", Duration::from_millis(10));
        learned.observe("a/m", Duration::from_millis(10));
        assert_eq!(learned.delay("a/m"), None);
        learned.observe("a/m", Duration::from_millis(10));
        assert_eq!(learned.delay("a/m"), Some(Duration::from_millis(200)));
        for _ in 0..200 {
            learned.observe("a/m", Duration::from_secs(30));
        }
        assert_eq!(learned.delay("a/m"), Some(Duration::from_secs(2)));
        assert_eq!(learned.delay("b/m"), None);
    }

    #[test]
    fn keeps_only_its_window() {
        let learned = LearnedDelay::builder()
            .window(10)
            .min_observations(10)
            .build()
            .unwrap();
        for _ in 0..1000 {
            learned.observe("a/m", Duration::from_secs(5));
        }
        for _ in 0..10 {
            learned.observe("a/m", Duration::from_millis(300));
        }
        let models = learned.models.read().unwrap();
        assert_eq!(models["a/m"].lock().unwrap().ring.len(), 10);
        drop(models);
        assert_eq!(learned.delay("a/m"), Some(Duration::from_millis(300)));
    }
}
