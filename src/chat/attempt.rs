//! The attempt log: which models were tried for a call, how, and how long each took.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use http::StatusCode;

use crate::chat::error::{ChatError, ErrorKind};
use crate::chat::request::ChatRequest;
use crate::chat::response::ChatResponse;

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
    /// This try failed on its key's own account and the same call moved on
    /// to the provider's next key ([`Credentials`](crate::Credentials)): an
    /// upstream call, but not one of the call's attempts that
    /// [`MaxUpstreamCalls`] caps, as the key pool bounds those already.
    pub rotated: bool,
    /// Stream events that could not be read during the attempt (see
    /// [`MalformedChunks`](crate::MalformedChunks)): each one is a fault,
    /// so the attempt has failed; filled in when its stream ends.
    pub malformed: usize,
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
            rotated: false,
            malformed: 0,
        }
    }

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
            rotated: false,
            malformed: 0,
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
/// use llm_fallback::{Attempt, AttemptSummary, ChatError};
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

/// A request extension capping the upstream calls of one call, retries and
/// fallbacks together (skips do not count): once the call's
/// [`AttemptLog`] holds that many, `Retry` stops retrying and the routing
/// layers stop trying candidates, and the last error is returned.
///
/// The routing layers insert their own cap
/// ([`RouteOptions::max_upstream_calls`](crate::RouteOptions::max_upstream_calls),
/// default [`MaxUpstreamCalls::DEFAULT`]) unless the request has one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxUpstreamCalls(pub usize);

impl MaxUpstreamCalls {
    /// 4: every candidate of a three-way route plus one retry. At independent
    /// faults of rate `f`, four calls all fail with probability `f^4`
    /// (5 in 10 000 at 15 %); beyond that the failures are rarely independent
    /// (an outage), and each further call only adds load to providers that
    /// are already struggling.
    pub const DEFAULT: usize = 4;

    /// Whether `log` has used up the cap of `request`, if it has one.
    pub(crate) fn reached(request: &ChatRequest, log: &AttemptLog) -> bool {
        request
            .extensions()
            .get::<MaxUpstreamCalls>()
            .is_some_and(|cap| log.capped_calls() >= cap.0)
    }
}

/// A finished attempt log, as stored in a response's extensions.
#[derive(Clone, Debug, Default)]
pub(crate) struct Attempts(pub(crate) Vec<Attempt>);

/// The log shared by every layer working on one call. It lives in the
/// request's extensions; clones of the request share it.
///
/// The protocol every layer follows:
/// - [`enter`](Self::enter) when the call arrives. The first layer to do so
///   (the outermost) creates the log and *owns* it.
/// - Record an outcome only when no inner layer did
///   ([`record_if_missing`](Self::record_if_missing)), so each upstream call
///   appears once whichever layers the stack has.
/// - Only the owner attaches the log to the final response or error
///   ([`LogScope::attach`]): the log is copied once per call, not once per
///   layer.
#[derive(Clone, Default)]
pub struct AttemptLog(Arc<LogInner>);

#[derive(Default)]
struct LogInner {
    entries: Mutex<Vec<Attempt>>,
    /// Whether a layer has entered the log and so owns it.
    owned: AtomicBool,
}

/// A layer's handle on the log of one call: the log, and whether this layer
/// owns it (created it, being the outermost layer that keeps a log).
#[derive(Clone, Debug)]
pub struct LogScope {
    log: AttemptLog,
    owner: bool,
}

impl LogScope {
    /// The shared log.
    pub fn log(&self) -> &AttemptLog {
        &self.log
    }

    /// Whether this layer created the log and so attaches it.
    pub fn is_owner(&self) -> bool {
        self.owner
    }

    /// Attaches the log to the call's outcome if this layer owns it; inner
    /// layers leave that to the owner.
    pub fn attach(&self, result: &mut Result<ChatResponse, ChatError>) {
        if self.owner {
            match result {
                Ok(response) => response.set_attempts(self.log.snapshot()),
                Err(e) => e.set_attempts(self.log.snapshot()),
            }
        }
    }

    /// [`attach`](Self::attach) for an error.
    pub fn attach_error(&self, e: &mut ChatError) {
        if self.owner {
            e.set_attempts(self.log.snapshot());
        }
    }
}

impl std::ops::Deref for LogScope {
    type Target = AttemptLog;

    fn deref(&self) -> &AttemptLog {
        &self.log
    }
}

impl AttemptLog {
    /// The log of `request`, created if it has none yet. The first layer to
    /// enter it owns it, whoever created it.
    pub fn enter(request: &mut ChatRequest) -> LogScope {
        let log = AttemptLog::of(request);
        let owner = !log.0.owned.swap(true, Ordering::Relaxed);
        LogScope { log, owner }
    }

    /// The log of `request`, created if it has none yet: take it before the
    /// call to watch the attempts live (entries a stream amends after the
    /// response was returned show here). A log belongs to one call.
    pub fn of(request: &mut ChatRequest) -> AttemptLog {
        if let Some(log) = request.extensions().get::<AttemptLog>() {
            return log.clone();
        }
        let log = AttemptLog::default();
        request.extensions_mut().insert(log.clone());
        log
    }

    /// The log of `request`, if a layer created one.
    pub fn get(request: &ChatRequest) -> Option<AttemptLog> {
        request.extensions().get::<AttemptLog>().cloned()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Attempt>> {
        // A panic while holding this lock cannot leave the Vec inconsistent.
        self.0.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many attempts are recorded.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many recorded attempts went upstream (skips not counted).
    pub fn upstream_calls(&self) -> usize {
        self.lock().iter().filter(|a| a.upstream).count()
    }

    /// The upstream calls [`MaxUpstreamCalls`] counts: key rotations aside.
    fn capped_calls(&self) -> usize {
        self.lock()
            .iter()
            .filter(|a| a.upstream && !a.rotated)
            .count()
    }

    /// How many candidates were passed over without an upstream call.
    pub fn skips(&self) -> usize {
        self.lock().iter().filter(|a| !a.upstream).count()
    }

    /// Upstream calls and skips, counted apart.
    pub fn summary(&self) -> AttemptSummary {
        AttemptSummary::of(&self.lock())
    }

    /// Records an attempt.
    pub fn push(&self, attempt: Attempt) {
        self.lock().push(attempt);
    }

    /// Records the outcome of a call to `model` unless an inner layer already
    /// recorded something since the log had `before` entries.
    pub fn record_if_missing<T>(
        &self,
        before: usize,
        model: &str,
        result: &Result<T, ChatError>,
        latency: Duration,
    ) {
        let mut log = self.lock();
        if log.len() != before {
            return;
        }
        log.push(match result {
            Ok(_) => Attempt::success(model, latency),
            Err(e) => Attempt::failure(model, e, latency),
        });
    }

    /// Changes the attempt recorded at `index` (0 for the first), e.g. when
    /// a stream that served ends in a fault after its outcome was recorded.
    /// Returns whether there was one.
    pub fn amend(&self, index: usize, change: impl FnOnce(&mut Attempt)) -> bool {
        match self.lock().get_mut(index) {
            Some(attempt) => {
                change(attempt);
                true
            }
            None => false,
        }
    }

    /// Names the credential `label` on every attempt recorded since the log
    /// had `before` entries that names none yet (the layer that picked the
    /// key knows it; the layer that recorded the attempt may not).
    pub fn label_key_since(&self, before: usize, label: &str) {
        let mut log = self.lock();
        for attempt in log.iter_mut().skip(before) {
            if attempt.key.is_none() {
                attempt.key = Some(label.to_owned());
            }
        }
    }

    /// A copy of the attempts so far.
    pub fn snapshot(&self) -> Vec<Attempt> {
        self.lock().clone()
    }
}

impl fmt::Debug for AttemptLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.lock().iter()).finish()
    }
}
