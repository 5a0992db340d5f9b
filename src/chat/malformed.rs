//! A counter of stream events that could not be read.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// How many events of a stream could not be read: not JSON, JSON that is
/// not a chunk, a choice or tool-call index out of range, an event larger
/// than [`MAX_EVENT_BYTES`](crate::chat::streaming::MAX_EVENT_BYTES), a line that
/// is not UTF-8.
///
/// Such an event may have carried content, so it is never skipped: before
/// the commit point (the first content chunk) it fails the attempt with
/// kind [`Server`](crate::chat::ErrorKind::Server), so retry and fallback apply;
/// after it, the stream ends with a
/// [`StreamInterrupted`](crate::chat::ErrorKind::StreamInterrupted) item
/// ([`StreamFault::Protocol`](crate::chat::StreamFault::Protocol)), which
/// mid-stream recovery can finish, and which the HTTP server sends as an
/// in-band error event with no `[DONE]`. Only what provably carries nothing
/// is skipped, uncounted: SSE comments, keep-alives (empty `data:`), and
/// events of a type the client does not deliver (Anthropic's `ping`).
///
/// | event | before the first content chunk | after it |
/// |---|---|---|
/// | comment, keep-alive, `ping` | skipped | skipped |
/// | cannot be read (counted here) | the attempt fails, `Server` | `StreamInterrupted`, `Protocol` |
/// | the provider's error event | the attempt fails, as classified | `StreamInterrupted`, `Protocol` |
///
/// The attempt layer copies the count into
/// [`Attempt::malformed`](crate::chat::Attempt::malformed).
///
/// The provider clients put one in every streamed response's
/// [`extensions`](crate::chat::ChatResponse::extensions); it keeps counting while
/// the stream is read. When the request's extensions already hold one (an
/// outer layer inserted it to count across attempts, e.g. for the attempt
/// log), the client counts into that one and hands it back instead.
///
/// ```
/// use llm_fallback::chat::MalformedChunks;
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

    /// How many events could not be read so far.
    pub fn count(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }

    /// Counts one event that could not be read.
    pub fn record(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}
