//! What went wrong, as the policies see it: the error kinds every layer
//! matches on, which deadline fired, and how a committed stream failed.

use std::fmt;

/// What went wrong, as the policies see it.
///
/// The defaults each layer applies per kind are the table in the crate docs
/// (and `DESIGN.md`): see [`is_retryable`](Self::is_retryable),
/// [`is_fallbackable`](Self::is_fallbackable) and
/// [`counts_for_cooldown`](Self::counts_for_cooldown). Every default can be
/// overridden by a policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// 429, quota exhausted.
    RateLimited,
    /// 500, 502, 503, 504, 529 overloaded, a malformed answer.
    Server,
    /// A deadline fired: headers, first token, stall, attempt or total.
    Timeout,
    /// Connection refused or reset, DNS, TLS.
    Connect,
    /// 401, 403.
    Auth,
    /// The provider does not know the model, or no provider is registered for it.
    NotFound,
    /// The prompt does not fit the model's context window.
    ContextWindowExceeded,
    /// The provider's content filter refused the prompt or the answer.
    ContentFilter,
    /// Any other 400 or 422: the request itself is wrong.
    BadRequest,
    /// A committed stream was cut, stalled, or turned to garbage.
    StreamInterrupted,
    /// The model's circuit breaker is open; no upstream call was made.
    CoolingDown,
    /// The caller gave up on the call.
    Cancelled,
    /// The stack is misconfigured.
    Config,
}

impl ErrorKind {
    /// Every kind, for tables and tests.
    pub const ALL: [ErrorKind; 13] = [
        ErrorKind::RateLimited,
        ErrorKind::Server,
        ErrorKind::Timeout,
        ErrorKind::Connect,
        ErrorKind::Auth,
        ErrorKind::NotFound,
        ErrorKind::ContextWindowExceeded,
        ErrorKind::ContentFilter,
        ErrorKind::BadRequest,
        ErrorKind::StreamInterrupted,
        ErrorKind::CoolingDown,
        ErrorKind::Cancelled,
        ErrorKind::Config,
    ];

    /// Whether the same model is worth calling again, by default.
    ///
    /// Timeouts are not: a silent route only multiplies the wait, so the call
    /// moves on to the next candidate instead.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::RateLimited | ErrorKind::Server | ErrorKind::Connect
        )
    }

    /// Whether another candidate should be tried, by default.
    ///
    /// `ContextWindowExceeded` is not: it goes only to the larger-context
    /// routes configured for it. Content-filter and bad-request errors would
    /// fail the same way elsewhere, and the caller should see the reason.
    pub fn is_fallbackable(self) -> bool {
        matches!(
            self,
            ErrorKind::RateLimited
                | ErrorKind::Server
                | ErrorKind::Timeout
                | ErrorKind::Connect
                | ErrorKind::Auth
                | ErrorKind::NotFound
                | ErrorKind::StreamInterrupted
                | ErrorKind::CoolingDown
        )
    }

    /// Whether the failure counts toward opening the model's breaker, by default.
    pub fn counts_for_cooldown(self) -> bool {
        matches!(
            self,
            ErrorKind::RateLimited
                | ErrorKind::Server
                | ErrorKind::Timeout
                | ErrorKind::Connect
                | ErrorKind::Auth
                | ErrorKind::NotFound
                | ErrorKind::StreamInterrupted
        )
    }

    /// Whether one failure opens the breaker at once, by default, whatever
    /// `Retry-After` says: the provider does not know the model, which no
    /// retry will change.
    ///
    /// A rate limit or a bad key no longer does: under scattered faults one
    /// 429 or 401 says little, so they count toward the failure ratio, and a
    /// failure that carries a `Retry-After` opens the breaker for that time
    /// (see the cooldown layer's `default_verdict`).
    pub fn trips_cooldown_at_once(self) -> bool {
        matches!(self, ErrorKind::NotFound)
    }

    /// The kind's name, as in the table.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::Server => "server",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Connect => "connect",
            ErrorKind::Auth => "auth",
            ErrorKind::NotFound => "not_found",
            ErrorKind::ContextWindowExceeded => "context_window_exceeded",
            ErrorKind::ContentFilter => "content_filter",
            ErrorKind::BadRequest => "bad_request",
            ErrorKind::StreamInterrupted => "stream_interrupted",
            ErrorKind::CoolingDown => "cooling_down",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Config => "config",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a model was passed over without a call (an error of kind
/// [`CoolingDown`](ErrorKind::CoolingDown)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SkipReason {
    /// Its circuit breaker is open.
    Cooling,
    /// It is at its rpm or tpm limit until the minute ends (the limit layer).
    Limited,
    /// Adaptive throttling shed the call: too few of its recent calls were
    /// answered.
    Shed,
}

impl SkipReason {
    /// A short name: `cooling`, `limited` or `shed`.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::Cooling => "cooling",
            SkipReason::Limited => "limited",
            SkipReason::Shed => "shed",
        }
    }
}

/// Which deadline fired.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TimeoutKind {
    /// The whole call's budget (an outermost `Timeout`).
    Total,
    /// One attempt's budget.
    Attempt,
    /// Connect plus response head.
    Headers,
    /// Time to the first content chunk of a stream.
    FirstToken,
    /// The gap between two chunks of a stream.
    Idle,
    /// The model-selection function's budget.
    Select,
}

impl fmt::Display for TimeoutKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TimeoutKind::Total => "total deadline",
            TimeoutKind::Attempt => "attempt deadline",
            TimeoutKind::Headers => "headers deadline",
            TimeoutKind::FirstToken => "first-token deadline",
            TimeoutKind::Idle => "idle deadline",
            TimeoutKind::Select => "model-selection deadline",
        })
    }
}

/// How a committed stream failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StreamFault {
    /// The connection or body ended before the stream was finished.
    Cut,
    /// No chunk arrived within the idle deadline.
    Stall,
    /// The provider sent an error event or data that breaks the protocol.
    Protocol,
}

impl fmt::Display for StreamFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StreamFault::Cut => "cut",
            StreamFault::Stall => "stalled",
            StreamFault::Protocol => "protocol error",
        })
    }
}
