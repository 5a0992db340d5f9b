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
        Self::reached_with(request, log, 0)
    }

    /// [`reached`](Self::reached), counting `running` calls that are not
    /// in the log yet (a hedged call's racers).
    pub(crate) fn reached_with(request: &ChatRequest, log: &AttemptLog, running: usize) -> bool {
        request
            .extensions()
            .get::<MaxUpstreamCalls>()
            .is_some_and(|cap| log.capped_calls().saturating_add(running) >= cap.0)
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
    entries: Mutex<Entries>,
    /// Whether a layer has entered the log and so owns it.
    owned: AtomicBool,
    /// For the log of one racer of a hedged call ([`fork`](AttemptLog::fork)):
    /// the call's log, which its entries join when the racer is done.
    parent: Option<AttemptLog>,
}

/// A log's own entries, or where they went in the parent's when they joined it.
#[derive(Default)]
struct Entries {
    list: Vec<Attempt>,
    /// Set once the entries joined the parent's, at this index: from then on
    /// the log is a window on the parent's entries from there.
    joined_at: Option<usize>,
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

    /// Runs `f` on the list holding this log's entries and the index where
    /// they start in it (0 unless they joined a parent's).
    fn with<R>(&self, f: impl FnOnce(&mut Vec<Attempt>, usize) -> R) -> R {
        let mut log = self;
        let mut start = 0usize;
        loop {
            let mut entries = lock(&log.0.entries);
            match (entries.joined_at, &log.0.parent) {
                // Joined for good: the parent's entries are the ones to use.
                (Some(at), Some(parent)) => {
                    drop(entries);
                    start = start.saturating_add(at);
                    log = parent;
                }
                _ => {
                    let start = start.min(entries.list.len());
                    return f(&mut entries.list, start);
                }
            }
        }
    }

    /// How many attempts are recorded.
    pub fn len(&self) -> usize {
        self.with(|list, start| list.len() - start)
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many recorded attempts went upstream (skips not counted).
    pub fn upstream_calls(&self) -> usize {
        self.with(|list, start| list[start..].iter().filter(|a| a.upstream).count())
    }

    /// The upstream calls [`MaxUpstreamCalls`] counts: key rotations aside.
    /// A racer's log counts the whole call's: its parent's and its own.
    fn capped_calls(&self) -> usize {
        let count = |list: &[Attempt]| list.iter().filter(|a| a.upstream && !a.rotated).count();
        let own = lock(&self.0.entries);
        match (&self.0.parent, own.joined_at) {
            (None, _) => count(&own.list),
            (Some(parent), None) => {
                let own = count(&own.list);
                parent.capped_calls().saturating_add(own)
            }
            (Some(parent), Some(_)) => {
                drop(own);
                parent.capped_calls()
            }
        }
    }

    /// How many candidates were passed over without an upstream call.
    pub fn skips(&self) -> usize {
        self.with(|list, start| list[start..].iter().filter(|a| !a.upstream).count())
    }

    /// Upstream calls and skips, counted apart.
    pub fn summary(&self) -> AttemptSummary {
        self.with(|list, start| AttemptSummary::of(&list[start..]))
    }

    /// Records an attempt.
    pub fn push(&self, attempt: Attempt) {
        self.with(|list, _| list.push(attempt));
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
        self.with(|list, start| {
            if list.len() - start != before {
                return;
            }
            list.push(match result {
                Ok(_) => Attempt::success(model, latency),
                Err(e) => Attempt::failure(model, e, latency),
            });
        });
    }

    /// Changes the attempt recorded at `index` (0 for the first), e.g. when
    /// a stream that served ends in a fault after its outcome was recorded.
    /// Returns whether there was one.
    pub fn amend(&self, index: usize, change: impl FnOnce(&mut Attempt)) -> bool {
        self.with(
            |list, start| match list.get_mut(start.saturating_add(index)) {
                Some(attempt) => {
                    change(attempt);
                    true
                }
                None => false,
            },
        )
    }

    /// Names the credential `label` on every attempt recorded since the log
    /// had `before` entries that names none yet (the layer that picked the
    /// key knows it; the layer that recorded the attempt may not).
    pub fn label_key_since(&self, before: usize, label: &str) {
        self.with(|list, start| {
            for attempt in list.iter_mut().skip(start.saturating_add(before)) {
                if attempt.key.is_none() {
                    attempt.key = Some(label.to_owned());
                }
            }
        });
    }

    /// A copy of the attempts so far.
    pub fn snapshot(&self) -> Vec<Attempt> {
        self.with(|list, start| list[start..].to_vec())
    }

    /// A log for one racer of a hedged call: the layers inside the racer
    /// record in it as in any call's log (so concurrent racers do not mix
    /// their entries), its cap on upstream calls counts this log's calls
    /// too, and no layer owns it. Its entries join this log by
    /// [`join`](Self::join).
    pub(crate) fn fork(&self) -> AttemptLog {
        AttemptLog(Arc::new(LogInner {
            entries: Mutex::default(),
            owned: AtomicBool::new(true),
            parent: Some(self.clone()),
        }))
    }

    /// Whether this is a racer's log ([`fork`](Self::fork)): the call it
    /// records was started as a hedge.
    pub(crate) fn is_racer(&self) -> bool {
        self.0.parent.is_some()
    }

    /// Moves the entries of a racer's log ([`fork`](Self::fork)) to the end
    /// of its parent's, marked as made by a hedge when `hedge` is set. From
    /// then on the racer's log is a window on them, so a stream that
    /// amends its entry later amends the parent's. Returns the index of
    /// its first entry in the parent's; does nothing (and returns `None`)
    /// for a log that is not a racer's or has joined already.
    pub(crate) fn join(&self, hedge: bool) -> Option<usize> {
        let parent = self.0.parent.as_ref()?;
        let mut own = lock(&self.0.entries);
        if own.joined_at.is_some() {
            return None;
        }
        let mut moved = std::mem::take(&mut own.list);
        if hedge {
            for attempt in &mut moved {
                attempt.hedge = true;
            }
        }
        let at = parent.with(|list, start| {
            let at = list.len() - start;
            list.append(&mut moved);
            at
        });
        own.joined_at = Some(at);
        Some(at)
    }
}

fn lock(entries: &Mutex<Entries>) -> MutexGuard<'_, Entries> {
    // A panic while holding this lock cannot leave the entries inconsistent.
    entries.lock().unwrap_or_else(|e| e.into_inner())
}

impl fmt::Debug for AttemptLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.with(|list, start| f.debug_list().entries(list[start..].iter()).finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::kind::ErrorKind;

    fn failed(model: &str) -> Attempt {
        let e = ChatError::new(ErrorKind::Server, "boom");
        Attempt::failure(model, &e, Duration::ZERO)
    }

    #[test]
    fn a_racer_log_records_apart_and_joins_its_parent_in_one_piece() {
        let call = AttemptLog::default();
        call.push(failed("a/main"));
        let racer = call.fork();
        racer.push(failed("b/hedge"));
        call.push(failed("a/main"));
        // Each sees only its own entries until the racer joins.
        assert_eq!((call.len(), racer.len()), (2, 1));
        assert_eq!(racer.join(true), Some(2));
        let models: Vec<_> = call
            .snapshot()
            .into_iter()
            .map(|a| (a.model, a.hedge))
            .collect();
        assert_eq!(
            models,
            [
                ("a/main".to_owned(), false),
                ("a/main".to_owned(), false),
                ("b/hedge".to_owned(), true)
            ]
        );
        assert_eq!(racer.join(true), None, "joins once");
    }

    #[test]
    fn a_joined_racer_log_amends_its_entries_in_the_parent() {
        let call = AttemptLog::default();
        let racer = call.fork();
        racer.push(Attempt::success("b/hedge", Duration::ZERO));
        call.push(failed("a/main"));
        racer.join(true);
        assert_eq!(racer.len(), 1);
        assert!(racer.amend(0, |a| a.malformed = 3));
        assert_eq!(call.snapshot()[1].malformed, 3);
        assert_eq!(call.snapshot()[0].malformed, 0);
    }

    #[test]
    fn a_racer_log_counts_the_whole_call_toward_the_cap() {
        let call = AttemptLog::default();
        call.push(failed("a/main"));
        let racer = call.fork();
        racer.push(failed("b/hedge"));
        assert_eq!(racer.capped_calls(), 2);
        assert_eq!(call.capped_calls(), 1);
        // A racer's log has an owner already: no layer inside attaches it.
        let mut request = ChatRequest::new("b/hedge", []);
        request.extensions_mut().insert(racer);
        assert!(!AttemptLog::enter(&mut request).is_owner());
    }
}
