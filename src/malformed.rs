//! A counter of stream events skipped because they were not valid.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// How many events of a stream were skipped as malformed (invalid JSON, or
/// JSON that is not a chunk). A malformed event is never passed on and never
/// fails the stream: it is dropped and counted here.
///
/// The provider clients put one in every streamed response's
/// [`extensions`](crate::ChatResponse::extensions); it keeps counting while
/// the stream is read. When the request's extensions already hold one (an
/// outer layer inserted it to count across attempts, e.g. for the attempt
/// log), the client counts into that one and hands it back instead.
///
/// ```
/// use llm_fallback::MalformedChunks;
///
/// let counter = MalformedChunks::default();
/// let shared = counter.clone();
/// shared.record();
/// assert_eq!(counter.count(), 1);
/// ```
#[derive(Clone, Debug, Default)]
pub struct MalformedChunks(Arc<AtomicUsize>);

impl MalformedChunks {
    /// A counter at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many events were skipped so far.
    pub fn count(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }

    /// Counts one skipped event.
    pub fn record(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}
