//! One typed error for every failure, classified once and matched by every policy.

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use http::StatusCode;
use tokio::time::Instant;

use crate::chat::attempt::Attempt;
use crate::chat::config_error::ConfigError;
use crate::chat::kind::{ErrorKind, SkipReason, StreamFault, TimeoutKind};

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
    skip: Option<SkipReason>,
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
                skip: None,
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

    /// Why the model was skipped without a call: `Some` exactly for kind
    /// `CoolingDown` ([`SkipReason::Cooling`] unless a layer said otherwise).
    pub fn skip_reason(&self) -> Option<SkipReason> {
        (self.inner.kind == ErrorKind::CoolingDown)
            .then(|| self.inner.skip.unwrap_or(SkipReason::Cooling))
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

    /// Says why a model was skipped (for an error of kind `CoolingDown`).
    pub fn with_skip_reason(mut self, reason: SkipReason) -> Self {
        self.inner.skip = Some(reason);
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

// An attempt is built from an error, so the constructor lives with the
// error: the attempt record stays below it.
impl Attempt {
    /// A failed attempt, described by its error.
    pub fn failure(model: impl Into<String>, error: &ChatError, latency: Duration) -> Self {
        Attempt {
            model: model.into(),
            error: Some(error.kind()),
            status: error.status(),
            latency,
            message: error.message().to_owned(),
            key: None,
            upstream: error.kind() != ErrorKind::CoolingDown,
            skip: error.skip_reason(),
            rotated: false,
            malformed: 0,
            hedge: false,
        }
    }
}

impl From<ConfigError> for ChatError {
    fn from(e: ConfigError) -> Self {
        ChatError::config(e.to_string())
    }
}
