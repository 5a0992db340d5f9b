//! The deadlines of a streamed answer.

use std::time::Duration;

/// Deadlines for a streamed answer, each optional: the response head, the
/// first content token, the gap between two chunks, and the whole stream.
///
/// Set them per model on the attempt layer with
/// [`TimeoutLayer::with_stream_deadlines`](super::TimeoutLayer::with_stream_deadlines).
/// They apply to requests with `"stream": true` only (a complete answer's
/// head comes when the whole answer is ready, so it has only the attempt
/// deadline). What fires, and what the caller sees:
///
/// | deadline | measured from | when it passes |
/// |---|---|---|
/// | headers | the attempt's start | the attempt fails with [`TimeoutKind::Headers`](crate::chat::TimeoutKind::Headers) (the clients enforce it) |
/// | first token | the attempt's start | the attempt fails with [`TimeoutKind::FirstToken`](crate::chat::TimeoutKind::FirstToken) |
/// | idle | the previous chunk | the stream ends with a `StreamInterrupted` item ([`StreamFault::Stall`](crate::chat::StreamFault::Stall), [`TimeoutKind::Idle`](crate::chat::TimeoutKind::Idle)) |
/// | total | the attempt's start | before the first token, like the first-token deadline; after it, a `Stall` item with [`TimeoutKind::Attempt`](crate::chat::TimeoutKind::Attempt) |
///
/// Header and first-token timeouts are ordinary errors of kind `Timeout`:
/// not retried by default (a silent route only multiplies the wait), so the
/// call moves on to the next candidate at once. A stream idle after its
/// finish reason has arrived is complete (only `[DONE]` is missing): it ends
/// normally.
///
/// Defaults ([`StreamDeadlines::new`] or `default()`):
///
/// - headers: [`DEFAULT_HEADERS`](Self::DEFAULT_HEADERS), 15 s. Providers
///   send a stream's head as soon as they accept the request; a longer wait
///   means a stuck connection or queue.
/// - first token: [`DEFAULT_FIRST_TOKEN`](Self::DEFAULT_FIRST_TOKEN), 60 s.
///   Long prompts and reasoning models think for tens of seconds before
///   their first token; tighten it per model for fast models.
/// - idle: [`DEFAULT_IDLE`](Self::DEFAULT_IDLE), 30 s. Once a model
///   answers, chunks come many times a second; half a minute of silence is
///   a stall, not thinking.
/// - total: none, since long answers are legitimate.
///
/// ```
/// use std::time::Duration;
/// use llm_fallback::layers::timeout::StreamDeadlines;
///
/// let fast = StreamDeadlines::new()
///     .with_first_token(Duration::from_secs(10))
///     .with_idle(Duration::from_secs(10));
/// assert_eq!(fast.headers(), Some(StreamDeadlines::DEFAULT_HEADERS));
/// assert_eq!(fast.first_token(), Some(Duration::from_secs(10)));
/// assert_eq!(fast.total(), None);
/// assert_eq!(StreamDeadlines::none().idle(), None);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamDeadlines {
    headers: Option<Duration>,
    first_token: Option<Duration>,
    idle: Option<Duration>,
    total: Option<Duration>,
}

impl StreamDeadlines {
    /// The default headers deadline: 15 s.
    pub const DEFAULT_HEADERS: Duration = Duration::from_secs(15);
    /// The default first-token deadline: 60 s.
    pub const DEFAULT_FIRST_TOKEN: Duration = Duration::from_secs(60);
    /// The default idle deadline: 30 s.
    pub const DEFAULT_IDLE: Duration = Duration::from_secs(30);

    /// The defaults: headers 15 s, first token 60 s, idle 30 s, no total.
    pub fn new() -> Self {
        StreamDeadlines {
            headers: Some(Self::DEFAULT_HEADERS),
            first_token: Some(Self::DEFAULT_FIRST_TOKEN),
            idle: Some(Self::DEFAULT_IDLE),
            total: None,
        }
    }

    /// No deadline at all (add the ones you want with the `with_` methods).
    pub fn none() -> Self {
        StreamDeadlines {
            headers: None,
            first_token: None,
            idle: None,
            total: None,
        }
    }

    /// Sets the headers deadline (`None` for none).
    pub fn with_headers(mut self, deadline: impl Into<Option<Duration>>) -> Self {
        self.headers = deadline.into();
        self
    }

    /// Sets the first-token deadline (`None` for none).
    pub fn with_first_token(mut self, deadline: impl Into<Option<Duration>>) -> Self {
        self.first_token = deadline.into();
        self
    }

    /// Sets the idle deadline between chunks (`None` for none).
    pub fn with_idle(mut self, deadline: impl Into<Option<Duration>>) -> Self {
        self.idle = deadline.into();
        self
    }

    /// Sets the deadline of the whole stream (`None` for none).
    pub fn with_total(mut self, deadline: impl Into<Option<Duration>>) -> Self {
        self.total = deadline.into();
        self
    }

    /// Connect plus response head.
    pub fn headers(&self) -> Option<Duration> {
        self.headers
    }

    /// From the attempt's start to the first content chunk.
    pub fn first_token(&self) -> Option<Duration> {
        self.first_token
    }

    /// The longest gap between two chunks.
    pub fn idle(&self) -> Option<Duration> {
        self.idle
    }

    /// From the attempt's start to the stream's end.
    pub fn total(&self) -> Option<Duration> {
        self.total
    }
}

impl Default for StreamDeadlines {
    fn default() -> Self {
        Self::new()
    }
}
