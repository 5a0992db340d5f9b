//! The record of one try of one model, and what a log of them says happened.

use std::fmt;
use std::time::Duration;

use http::StatusCode;

use crate::chat::kind::{ErrorKind, SkipReason};

/// One try of one model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    /// The model tried, `provider/model`.
    pub model: String,
    /// `None` when the attempt served the answer, else the failure's kind.
    pub error: Option<ErrorKind>,
    /// The upstream status, if the provider answered.
    pub status: Option<StatusCode>,
    /// From the start of the attempt to its outcome.
    pub latency: Duration,
    /// The failure's message (empty on success).
    pub message: String,
    /// The label of the credential used, never the key itself.
    pub key: Option<String>,
    /// Whether a request went upstream (false for a skip while cooling down).
    pub upstream: bool,
    /// For a skip (`upstream` false): why the model was passed over.
    pub skip: Option<SkipReason>,
    /// This try failed on its key's own account and the same call moved on
    /// to the provider's next key (`Credentials`, in the providers): an
    /// upstream call, but not one of the call's attempts that
    /// [`MaxUpstreamCalls`](crate::chat::MaxUpstreamCalls) caps, as the key pool bounds those already.
    pub rotated: bool,
    /// Stream events that could not be read during the attempt (see
    /// [`MalformedChunks`](crate::chat::MalformedChunks)): each one is a fault,
    /// so the attempt has failed; filled in when its stream ends.
    pub malformed: usize,
    /// This try was started as a hedge: the route's candidate before it had
    /// not answered within the hedge delay, so this one raced it. Of the
    /// racers, the one that answered first has no `error`; those still
    /// running then are [`Cancelled`](ErrorKind::Cancelled), which is not a
    /// failure of their model.
    pub hedge: bool,
}

impl Attempt {
    /// A successful attempt.
    pub fn success(model: impl Into<String>, latency: Duration) -> Self {
        Attempt {
            model: model.into(),
            error: None,
            status: None,
            latency,
            message: String::new(),
            key: None,
            upstream: true,
            skip: None,
            rotated: false,
            malformed: 0,
            hedge: false,
        }
    }

    /// Whether this attempt served the answer.
    pub fn is_success(&self) -> bool {
        self.error.is_none()
    }

    /// A short description: `401 Unauthorized`, `timeout`, `ok`.
    pub fn describe(&self) -> String {
        match (self.error, self.status) {
            (None, _) => "ok".to_owned(),
            (Some(_), Some(status)) => status.to_string(),
            (Some(ErrorKind::Timeout), None) => format!("timeout after {:.1?}", self.latency),
            (Some(kind), None) => kind.to_string(),
        }
    }
}

impl fmt::Display for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} in {:?}",
            self.model,
            self.describe(),
            self.latency
        )?;
        if let Some(key) = &self.key {
            write!(f, " (key {key})")?;
        }
        if self.malformed > 0 {
            write!(f, " ({} malformed events)", self.malformed)?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

/// What an attempt log says happened: upstream calls and skips, counted apart.
///
/// A skip (a model passed over because it was cooling down, shed by the
/// adaptive throttle, or over its usage limits) made no upstream call and
/// is never counted as an attempt.
///
/// ```
/// use std::time::Duration;
/// use llm_fallback::chat::{Attempt, AttemptSummary};
/// use llm_fallback::ChatError;
/// use tokio::time::Instant;
///
/// let skip = ChatError::cooling_down("a/m", Instant::now());
/// let log = [
///     Attempt::failure("a/m", &skip, Duration::ZERO),
///     Attempt::success("b/m", Duration::from_millis(80)),
/// ];
/// let summary = AttemptSummary::of(&log);
/// assert_eq!((summary.upstream_calls, summary.skips, summary.models_called), (1, 1, 1));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AttemptSummary {
    /// Requests that went upstream (retries and fallbacks included).
    pub upstream_calls: usize,
    /// Candidates passed over without an upstream call.
    pub skips: usize,
    /// Distinct models that were called upstream.
    pub models_called: usize,
}

impl AttemptSummary {
    /// Counts the attempts of a log (or of a snapshot of one).
    pub fn of(attempts: &[Attempt]) -> Self {
        let mut models: Vec<&str> = Vec::new();
        let mut summary = AttemptSummary::default();
        for a in attempts {
            if !a.upstream {
                summary.skips += 1;
                continue;
            }
            summary.upstream_calls += 1;
            if !models.contains(&a.model.as_str()) {
                models.push(&a.model);
            }
        }
        summary.models_called = models.len();
        summary
    }
}

/// A finished attempt log, as stored in a response's extensions.
#[derive(Clone, Debug, Default)]
pub(crate) struct Attempts(pub(crate) Vec<Attempt>);
