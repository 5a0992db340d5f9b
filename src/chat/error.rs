//! One typed error for every failure, classified once and matched by every policy.

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use http::StatusCode;
use tokio::time::Instant;

use crate::chat::attempt::Attempt;

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
    /// (see [`default_verdict`](crate::layers::cooldown::default_verdict)).
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

/// The error of every service in the crate.
///
/// Cheap to move (one box). Its [`Display`](fmt::Display) never contains an
/// API key: providers' messages are kept, request headers never are.
pub struct ChatError {
    inner: Box<Inner>,
}

struct Inner {
    kind: ErrorKind,
    message: String,
    model: Option<String>,
    status: Option<StatusCode>,
    code: Option<String>,
    retry_after: Option<Duration>,
    cooling_until: Option<Instant>,
    timeout: Option<TimeoutKind>,
    stream_fault: Option<(StreamFault, usize)>,
    candidates: usize,
    attempts: Vec<Attempt>,
    source: Option<Box<dyn StdError + Send + Sync>>,
}

impl ChatError {
    /// An error of `kind` with a message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ChatError {
            inner: Box::new(Inner {
                kind,
                message: message.into(),
                model: None,
                status: None,
                code: None,
                retry_after: None,
                cooling_until: None,
                timeout: None,
                stream_fault: None,
                candidates: 0,
                attempts: Vec::new(),
                source: None,
            }),
        }
    }

    /// A configuration error.
    pub fn config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Config, message)
    }

    /// A deadline fired after `elapsed`.
    pub fn timeout(which: TimeoutKind, elapsed: Duration) -> Self {
        let mut e = Self::new(
            ErrorKind::Timeout,
            format!("{which} exceeded after {elapsed:.1?}"),
        );
        e.inner.timeout = Some(which);
        e
    }

    /// The breaker of `model` is open until `until` (its
    /// [`retry_after`](Self::retry_after) is the time left).
    pub fn cooling_down(model: impl Into<String>, until: Instant) -> Self {
        let model = model.into();
        let left = until.saturating_duration_since(Instant::now());
        let mut e = Self::new(
            ErrorKind::CoolingDown,
            format!("cooling down for another {left:.1?}"),
        );
        e.inner.model = Some(model);
        e.inner.cooling_until = Some(until);
        e.inner.retry_after = Some(left);
        e
    }

    /// A committed stream failed after `chunks` chunks had been delivered.
    pub fn stream_interrupted(
        fault: StreamFault,
        chunks: usize,
        detail: impl fmt::Display,
    ) -> Self {
        let mut e = Self::new(
            ErrorKind::StreamInterrupted,
            format!("stream {fault} after {chunks} chunks: {detail}"),
        );
        e.inner.stream_fault = Some((fault, chunks));
        e
    }

    /// Every candidate failed: `last` is the last candidate's error, `attempts`
    /// the whole log. The message lists each candidate's outcome in order,
    /// with its upstream calls and its skips (a cooling model passed over is
    /// no call): `a/m: 503 Service Unavailable (2 calls); b/m: cooling_down (skipped)`.
    pub fn all_failed(last: ChatError, attempts: Vec<Attempt>) -> Self {
        // Per model, in order of first appearance: the outcome to show (its
        // last upstream call's, else its last skip's), calls, skips.
        let mut models: Vec<(&str, &Attempt, usize, usize)> = Vec::new();
        for a in &attempts {
            let entry = match models.iter_mut().find(|(m, ..)| *m == a.model) {
                Some(entry) => entry,
                None => {
                    models.push((&a.model, a, 0, 0));
                    models.last_mut().expect("just pushed")
                }
            };
            if a.upstream {
                entry.1 = a;
                entry.2 += 1;
            } else {
                if entry.2 == 0 {
                    entry.1 = a;
                }
                entry.3 += 1;
            }
        }
        let candidates = models.len().max(1);
        let mut message = format!(
            "all {candidates} candidate{} failed: ",
            if candidates == 1 { "" } else { "s" }
        );
        let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
        for (i, (model, a, calls, skips)) in models.iter().enumerate() {
            if i > 0 {
                message.push_str("; ");
            }
            message.push_str(model);
            message.push_str(": ");
            message.push_str(&a.describe());
            let counts = match (*calls, *skips) {
                (0, 1) => "skipped".to_owned(),
                (0, n) => format!("skipped {n} times"),
                (c, 0) => plural(c, "call"),
                (c, n) => format!("{}, {}", plural(c, "call"), plural(n, "skip")),
            };
            message.push_str(&format!(" ({counts})"));
        }
        let mut e = last;
        e.inner.message = message;
        e.inner.candidates = candidates;
        e.inner.attempts = attempts;
        e
    }

    /// The kind the policies match on.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// The message: the provider's own where there was one.
    pub fn message(&self) -> &str {
        &self.inner.message
    }

    /// The model the error came from, `provider/model`.
    pub fn model(&self) -> Option<&str> {
        self.inner.model.as_deref()
    }

    /// The upstream HTTP status, if the provider answered.
    pub fn status(&self) -> Option<StatusCode> {
        self.inner.status
    }

    /// The provider's error code (`insufficient_quota`, `context_length_exceeded` ...).
    pub fn code(&self) -> Option<&str> {
        self.inner.code.as_deref()
    }

    /// How long to wait before trying again: the provider's `Retry-After`
    /// (`retry-after-ms`), or, for an error that ends a call because its
    /// candidates are cooling down or at their limits, the earliest known
    /// recovery among them.
    pub fn retry_after(&self) -> Option<Duration> {
        self.inner.retry_after
    }

    /// When the breaker that refused the call closes again (kind `CoolingDown`).
    pub fn cooling_until(&self) -> Option<Instant> {
        self.inner.cooling_until
    }

    /// Which deadline fired (kind `Timeout`).
    pub fn timeout_kind(&self) -> Option<TimeoutKind> {
        self.inner.timeout
    }

    /// How a committed stream failed and how many chunks had been delivered
    /// (kind `StreamInterrupted`).
    pub fn stream_fault(&self) -> Option<(StreamFault, usize)> {
        self.inner.stream_fault
    }

    /// How many candidates failed, when a fallback layer gave up (0 otherwise).
    pub fn candidates_failed(&self) -> usize {
        self.inner.candidates
    }

    /// Every attempt made, in order.
    pub fn attempts(&self) -> &[Attempt] {
        &self.inner.attempts
    }

    /// Sets the model the error came from.
    pub fn with_model(mut self, model: impl Into<String>) -> Self {
        self.inner.model = Some(model.into());
        self
    }

    /// Sets the model in place.
    pub fn set_model(&mut self, model: impl Into<String>) {
        self.inner.model = Some(model.into());
    }

    /// Sets the upstream status.
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.inner.status = Some(status);
        self
    }

    /// Sets the provider's error code.
    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.inner.code = Some(code.into());
        self
    }

    /// Sets how long the provider asked us to wait.
    pub fn with_retry_after(mut self, after: Duration) -> Self {
        self.inner.retry_after = Some(after);
        self
    }

    /// Sets how long to wait before trying again, in place.
    pub fn set_retry_after(&mut self, after: Option<Duration>) {
        self.inner.retry_after = after;
    }

    /// Sets which deadline fired.
    pub fn with_timeout_kind(mut self, which: TimeoutKind) -> Self {
        self.inner.timeout = Some(which);
        self
    }

    /// Sets the underlying error.
    pub fn with_source(mut self, source: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        self.inner.source = Some(source.into());
        self
    }

    /// Replaces the attempt log.
    pub fn set_attempts(&mut self, attempts: Vec<Attempt>) {
        self.inner.attempts = attempts;
    }

    /// Replaces the message.
    pub fn set_message(&mut self, message: impl Into<String>) {
        self.inner.message = message.into();
    }
}

impl fmt::Display for ChatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.inner.candidates > 0 {
            return f.write_str(&self.inner.message);
        }
        if let Some(model) = &self.inner.model {
            write!(f, "{model}: ")?;
        }
        match self.inner.status {
            Some(status) => write!(f, "{status} ({}): {}", self.inner.kind, self.inner.message),
            None => write!(f, "{}: {}", self.inner.kind, self.inner.message),
        }
    }
}

impl fmt::Debug for ChatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("ChatError");
        d.field("kind", &self.inner.kind)
            .field("message", &self.inner.message);
        if let Some(m) = &self.inner.model {
            d.field("model", m);
        }
        if let Some(s) = &self.inner.status {
            d.field("status", s);
        }
        if let Some(c) = &self.inner.code {
            d.field("code", c);
        }
        if let Some(r) = &self.inner.retry_after {
            d.field("retry_after", r);
        }
        if let Some(t) = &self.inner.timeout {
            d.field("timeout", t);
        }
        if let Some(s) = &self.inner.stream_fault {
            d.field("stream_fault", s);
        }
        if !self.inner.attempts.is_empty() {
            d.field("attempts", &self.inner.attempts);
        }
        if let Some(s) = &self.inner.source {
            d.field("source", s);
        }
        d.finish()
    }
}

impl StdError for ChatError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|s| s as &(dyn StdError + 'static))
    }
}

/// A configuration that cannot be built. Lists every problem found, each with
/// the path of the setting it concerns (`routes.gpt-4o-mini.weights`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigError {
    problems: Vec<Problem>,
}

/// One problem of a configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Where: a dotted path in the configuration, or the builder method.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl ConfigError {
    /// A configuration error with one problem.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            problems: vec![Problem {
                path: path.into(),
                message: message.into(),
            }],
        }
    }

    /// Adds a problem.
    pub fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem {
            path: path.into(),
            message: message.into(),
        });
    }

    /// Adds every problem of `other`.
    pub fn extend(&mut self, other: ConfigError) {
        self.problems.extend(other.problems);
    }

    /// The problems.
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }

    /// Whether there is no problem.
    pub fn is_empty(&self) -> bool {
        self.problems.is_empty()
    }

    /// `Ok(value)` when there is no problem, `Err(self)` otherwise.
    pub fn into_result<T>(self, value: T) -> Result<T, ConfigError> {
        if self.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            if p.path.is_empty() {
                f.write_str(&p.message)?;
            } else {
                write!(f, "{}: {}", p.path, p.message)?;
            }
        }
        Ok(())
    }
}

impl StdError for ConfigError {}

impl From<ConfigError> for ChatError {
    fn from(e: ConfigError) -> Self {
        ChatError::config(e.to_string())
    }
}
