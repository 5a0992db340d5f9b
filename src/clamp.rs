//! Bounds for numbers that come from the wire or from configuration:
//! instants that saturate instead of overflowing, durations from floats that
//! never panic, token counts that stay far from `u64::MAX`.

use std::time::Duration;

use tokio::time::Instant;

/// How far ahead a saturated instant lies: a century, later than anything
/// a running process waits for, early enough to never overflow.
const FAR: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// `now + wait`, saturating far in the future instead of overflowing.
pub(crate) fn after(now: Instant, wait: Duration) -> Instant {
    now.checked_add(wait)
        .or_else(|| now.checked_add(FAR))
        .unwrap_or(now)
}

/// `secs` seconds as a duration, at most `max`; `None` when `secs` is
/// negative or not a number (infinity is `max`).
pub(crate) fn secs_f64(secs: f64, max: Duration) -> Option<Duration> {
    if secs.is_nan() || secs < 0.0 {
        return None;
    }
    // `try_from` fails only on values too large for a Duration.
    Some(Duration::try_from_secs_f64(secs).map_or(max, |d| d.min(max)))
}

/// The most tokens one call is counted for: 2^40 (about 10^12), far above
/// any real prompt or answer, far below where sums overflow or Lua's
/// doubles (Redis scripts) lose precision.
pub(crate) const MAX_TOKENS: u64 = 1 << 40;

/// A token count from a client or a provider, clamped to [`MAX_TOKENS`].
pub(crate) fn tokens(n: u64) -> u64 {
    n.min(MAX_TOKENS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secs_f64_clamps_and_rejects() {
        let max = Duration::from_secs(10);
        assert_eq!(secs_f64(1e300, max), Some(max));
        assert_eq!(secs_f64(f64::INFINITY, max), Some(max));
        assert_eq!(secs_f64(f64::NAN, max), None);
        assert_eq!(secs_f64(-1.0, max), None);
        assert_eq!(secs_f64(0.5, max), Some(Duration::from_millis(500)));
    }

    #[test]
    fn after_saturates() {
        let now = Instant::now();
        assert!(after(now, Duration::MAX) > now + Duration::from_secs(3600 * 24 * 365));
        assert_eq!(
            after(now, Duration::from_secs(1)),
            now + Duration::from_secs(1)
        );
    }
}
