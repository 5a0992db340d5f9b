//! Waiting in tests without sleeping: poll a condition with a generous
//! bound, or jump tokio's clock while nothing is in flight.
//!
//! Tests on real sockets run on real time: paused time auto-advances to the
//! next timer whenever the runtime waits on I/O, so a deadline could fire
//! before the request reaches the mock (tokio-rs/tokio#4522).

#![allow(dead_code)]

use std::time::Duration;

/// How long [`poll_until`] waits at most: far more than any condition needs
/// on a loaded machine, so only a real defect reaches it.
pub const POLL_LIMIT: Duration = Duration::from_secs(10);

/// Checks `condition` every few milliseconds until it holds; panics naming
/// `what` after [`POLL_LIMIT`] (real time, whatever tokio's clock does).
pub async fn poll_until(what: &str, condition: impl AsyncFnMut() -> bool) {
    poll_within(POLL_LIMIT, what, condition).await;
}

/// [`poll_until`] with its own bound, for a condition that takes `limit`
/// to come true by design (a clock reaching a time).
pub async fn poll_within(limit: Duration, what: &str, mut condition: impl AsyncFnMut() -> bool) {
    let start = std::time::Instant::now();
    while !condition().await {
        assert!(
            start.elapsed() < limit,
            "still not true after {limit:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Moves tokio's clock `by` forward at once (pause, advance, resume), for
/// cooldowns measured in minutes. Only between calls: with a request in
/// flight, its deadlines would fire.
pub async fn skip(by: Duration) {
    tokio::time::pause();
    tokio::time::advance(by).await;
    tokio::time::resume();
}
