//! The attempt log of one call, shared by every layer through the request's
//! extensions, and the cap on its upstream calls.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::chat::attempt::{Attempt, AttemptSummary};
use crate::chat::error::ChatError;
use crate::chat::request::ChatRequest;
use crate::chat::response::ChatResponse;

/// A request extension capping the upstream calls of one call, retries and
/// fallbacks together (skips do not count): once the call's
/// [`AttemptLog`] holds that many, `Retry` stops retrying and the routing
/// layers stop trying candidates, and the last error is returned.
///
/// The routing layers insert their own cap
/// (`RouteOptions::max_upstream_calls`,
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
