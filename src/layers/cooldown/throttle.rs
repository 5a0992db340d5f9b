//! Client-side adaptive throttling (Google SRE book, "Handling Overload"):
//! a model that keeps failing sheds a share of its calls locally.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard, RwLock};
use std::time::Duration;

use tokio::time::Instant;

use crate::rng::SharedRng;

use super::window::{Window, BUCKETS};

/// The adaptive throttle's settings: over the last `window`, a call to a
/// model is shed (failed locally, no upstream call) with probability
/// `max(0, (requests − k·accepts) / (requests + 1))`, where `requests`
/// counts the calls that reached the throttle and have an outcome (shed
/// ones included) and `accepts` those the model answered (anything but a
/// counting failure).
///
/// A call is counted when its outcome is known, not when it starts: calls
/// still in flight say nothing yet. Counting them at the start would shed a
/// healthy model under a burst of new calls (a thousand streams opening at
/// once have no answers yet) and a healthy slow one in steady state (with
/// 20 s answers, a third of a 30 s window's calls are always in flight).
///
/// Defaults `k = 2`, `window = 30 s`, `min_requests = 10`. With `k = 2`
/// nothing is shed while at least half of the calls succeed, so scattered
/// faults (15 % or 50 % of calls) are never shed; a model that answers
/// nothing sheds almost every call past the first `min_requests` of a
/// window, letting through about `ln(n)` of the next `n`: the few that
/// notice when it is back. Below `min_requests` calls in the window nothing
/// is shed (one failure out of one call is not a trend; at low traffic the
/// breaker's consecutive rule protects the model). Lower `k` sheds earlier.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdaptiveThrottle {
    /// The multiplier of accepts, at least 1 (a smaller one would shed
    /// calls to a healthy model).
    pub k: f64,
    /// How far back requests and accepts are counted (in ten buckets).
    pub window: Duration,
    /// Fewer requests than this in the window are never shed.
    pub min_requests: u32,
}

impl AdaptiveThrottle {
    /// `k` and `window`, with the default `min_requests` (10).
    pub fn new(k: f64, window: Duration) -> Self {
        AdaptiveThrottle {
            k,
            window,
            min_requests: 10,
        }
    }

    /// Sets the fewest requests in the window before anything is shed.
    pub fn with_min_requests(mut self, min_requests: u32) -> Self {
        self.min_requests = min_requests;
        self
    }

    /// The shedding probability for these counts (`requests` before this one).
    pub fn reject_probability(&self, requests: u32, accepts: u32) -> f64 {
        if requests < self.min_requests {
            return 0.0;
        }
        let requests = f64::from(requests);
        ((requests - self.k * f64::from(accepts)) / (requests + 1.0)).max(0.0)
    }
}

impl Default for AdaptiveThrottle {
    fn default() -> Self {
        AdaptiveThrottle::new(2.0, Duration::from_secs(30))
    }
}

/// The throttles of every model of one layer, in this process's memory.
pub(super) struct Throttles {
    pub(super) settings: AdaptiveThrottle,
    rng: SharedRng,
    map: RwLock<Map>,
}

#[derive(Default)]
struct Map {
    counts: HashMap<Box<str>, Mutex<Window>>,
    /// The size at which the next sweep runs (doubles, so sweeps stay rare).
    sweep_at: usize,
}

/// When the map grows past this, models with nothing in their window go.
const MIN_SWEEP: usize = 1024;

/// What the throttle decided for one call.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Shed {
    /// Go ahead.
    No,
    /// Fail locally; `accepts` of `requests` answered in the window.
    Yes { requests: u32, accepts: u32 },
}

impl Throttles {
    pub(super) fn new(settings: AdaptiveThrottle, rng: SharedRng) -> Self {
        Throttles {
            settings,
            rng,
            map: RwLock::new(Map::default()),
        }
    }

    /// Decides whether to shed a call to `model`; `exempt` calls (the
    /// half-open probe) are never shed. A shed call is counted at once (its
    /// outcome is known); one let through is counted by
    /// [`accepted`](Self::accepted) or [`failed`](Self::failed).
    pub(super) fn admit(&self, model: &str, exempt: bool, now: Instant) -> Shed {
        let (requests, accepts) = self.with(model, now, |c| c.totals(now));
        let p = self.settings.reject_probability(requests, accepts);
        // Draw only when it can matter, so a healthy model costs no lock on the RNG.
        if exempt || p <= 0.0 || self.rng.f64() >= p {
            return Shed::No;
        }
        self.with(model, now, |c| c.add(now, true, false));
        Shed::Yes {
            requests: requests.saturating_add(1),
            accepts,
        }
    }

    /// The model answered a call the throttle let through (or the call
    /// ended saying nothing against it).
    pub(super) fn accepted(&self, model: &str, now: Instant) {
        self.with(model, now, |c| c.add(now, true, true));
    }

    /// A call the throttle let through failed in a way that counts.
    pub(super) fn failed(&self, model: &str, now: Instant) {
        self.with(model, now, |c| c.add(now, true, false));
    }

    /// The breaker closed on a probe's or forced call's success: the model
    /// is back, so its history of failures stops shedding its calls.
    pub(super) fn reset(&self, model: &str) {
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        if let Some(counts) = map.counts.get(model) {
            lock(counts).clear();
        }
    }

    /// When a shed call's model may be tried again: the next bucket.
    pub(super) fn retry_at(&self, now: Instant) -> Instant {
        now.checked_add(self.settings.window / BUCKETS as u32)
            .unwrap_or(now)
    }

    fn with<T>(&self, model: &str, now: Instant, f: impl FnOnce(&mut Window) -> T) -> T {
        {
            let map = self.map.read().unwrap_or_else(|e| e.into_inner());
            if let Some(counts) = map.counts.get(model) {
                return f(&mut lock(counts));
            }
        }
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        if map.counts.len() >= map.sweep_at.max(MIN_SWEEP) {
            map.counts.retain(|_, c| lock(c).totals(now).0 > 0);
            map.sweep_at = map.counts.len() * 2;
        }
        let window = self.settings.window;
        let counts = map
            .counts
            .entry(model.into())
            .or_insert_with(|| Mutex::new(Window::new(window, now)));
        let out = f(&mut lock(counts));
        out
    }
}

// Counts stay valid whatever a panic interrupted: plain additions.
fn lock(counts: &Mutex<Window>) -> MutexGuard<'_, Window> {
    counts.lock().unwrap_or_else(|e| e.into_inner())
}

impl fmt::Debug for Throttles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Throttles")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sre_formula() {
        let t = AdaptiveThrottle::default();
        // At least half answered: nothing is shed.
        assert_eq!(t.reject_probability(100, 50), 0.0);
        assert_eq!(t.reject_probability(100, 85), 0.0);
        // Nothing answered: almost everything is.
        assert!((t.reject_probability(99, 0) - 0.99).abs() < 1e-9);
        assert_eq!(t.reject_probability(0, 0), 0.0);
        // Too few calls to call it a trend.
        assert_eq!(t.reject_probability(9, 0), 0.0);
    }

    #[tokio::test(start_paused = true)]
    async fn calls_in_flight_are_not_counted_so_a_burst_of_new_calls_is_never_shed() {
        let throttles = Throttles::new(AdaptiveThrottle::default(), SharedRng::seeded(1));
        let now = Instant::now();
        for _ in 0..1000 {
            assert_eq!(throttles.admit("a/m", false, now), Shed::No);
        }
        // They answer; a failing minority later changes nothing.
        for _ in 0..1000 {
            throttles.accepted("a/m", now);
        }
        for _ in 0..400 {
            throttles.failed("a/m", now);
        }
        assert_eq!(throttles.admit("a/m", false, now), Shed::No);
    }

    #[tokio::test(start_paused = true)]
    async fn counts_roll_off_after_the_window() {
        let throttles = Throttles::new(AdaptiveThrottle::default(), SharedRng::seeded(1));
        let now = Instant::now();
        for _ in 0..50 {
            throttles.failed("a/m", now);
        }
        assert!(matches!(
            throttles.admit("a/m", false, now),
            Shed::Yes { .. }
        ));
        let later = now + Duration::from_secs(31);
        assert_eq!(throttles.admit("a/m", false, later), Shed::No);
    }

    #[tokio::test(start_paused = true)]
    async fn models_idle_for_a_window_are_swept_as_the_map_grows() {
        let throttles = Throttles::new(AdaptiveThrottle::default(), SharedRng::seeded(1));
        let now = Instant::now();
        for i in 0..2000 {
            throttles.failed(&format!("p/m{i}"), now);
        }
        let later = now + Duration::from_secs(31);
        for i in 0..2000 {
            throttles.failed(&format!("q/m{i}"), later);
        }
        let map = throttles.map.read().unwrap();
        assert!(map.counts.len() <= 2100, "{} kept", map.counts.len());
    }
}
