//! Two counts over a rolling window, shared by the breaker's failure ratio
//! (calls, failures) and the adaptive throttle (requests, accepts).

use std::time::Duration;

use tokio::time::Instant;

/// How many buckets a window rolls in: it moves a tenth of its length at a time.
pub(super) const BUCKETS: u64 = 10;

/// Two counts over a rolling window, in ten buckets: it rolls forward a
/// tenth of the window at a time and never allocates.
#[derive(Debug)]
pub(super) struct Window {
    origin: Instant,
    bucket_nanos: u128,
    buckets: [Bucket; BUCKETS as usize],
}

#[derive(Clone, Copy, Debug, Default)]
struct Bucket {
    slot: u64,
    counts: (u32, u32),
}

impl Window {
    pub(super) fn new(window: Duration, now: Instant) -> Self {
        Window {
            origin: now,
            bucket_nanos: (window.as_nanos() / u128::from(BUCKETS)).max(1),
            buckets: Default::default(),
        }
    }

    fn slot(&self, now: Instant) -> u64 {
        let nanos = now.saturating_duration_since(self.origin).as_nanos();
        u64::try_from(nanos / self.bucket_nanos).unwrap_or(u64::MAX)
    }

    /// Adds one to each count whose flag is set.
    pub(super) fn add(&mut self, now: Instant, first: bool, second: bool) {
        let slot = self.slot(now);
        let bucket = &mut self.buckets[(slot % BUCKETS) as usize];
        if bucket.slot != slot {
            *bucket = Bucket {
                slot,
                ..Bucket::default()
            };
        }
        let (a, b) = &mut bucket.counts;
        *a = a.saturating_add(u32::from(first));
        *b = b.saturating_add(u32::from(second));
    }

    /// Both counts within the window.
    pub(super) fn totals(&self, now: Instant) -> (u32, u32) {
        let slot = self.slot(now);
        self.buckets
            .iter()
            .filter(|b| b.slot <= slot && slot - b.slot < BUCKETS)
            .fold((0, 0), |(a, b), bucket| {
                (
                    a.saturating_add(bucket.counts.0),
                    b.saturating_add(bucket.counts.1),
                )
            })
    }

    pub(super) fn clear(&mut self) {
        self.buckets = Default::default();
    }
}
