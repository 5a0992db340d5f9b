//! The candidates of one routed call: which one to call next, and what the
//! failures so far say about when any of them may serve again.
//!
//! The engine ([`RouteFuture`](super::future::RouteFuture)) and mid-stream
//! recovery ([`Recover`](super::recover::Recover)) both pick their next
//! candidate here, so the rules are the same for the first attempt and for
//! finishing a broken stream.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::{cooling_until, CandidateSource, RoutePolicy};
use crate::chat::{Attempt, ChatError, ChatRequest, ErrorKind, LogScope, MaxUpstreamCalls};
use crate::layers::health::{AllCooling, ForceAttempt};

/// The candidate state of one call, kept between attempts.
pub(super) struct Candidates<C> {
    /// The caller's request; each attempt gets a clone with its model set.
    template: ChatRequest,
    source: C,
    policy: Arc<RoutePolicy>,
    log: LogScope,
    /// Failed upstream calls (cooling skips and refusals are not counted).
    upstream: usize,
    /// The cooling candidate that recovers first, for the last resort.
    earliest_cooling: Option<(Arc<str>, Instant)>,
    /// The earliest known recovery of any candidate (cooling, limited, or
    /// rate limited with a `Retry-After`): the final error's `retry_after`.
    earliest_recovery: Option<Instant>,
    /// Whether the last resort (one call to a cooling candidate) was used.
    forced: bool,
    /// A candidate taken for a hedge that was not made: the next one.
    unread: Option<Arc<str>>,
}

impl<C> Candidates<C> {
    /// The candidates of `source` for `template`, logged in `log`.
    pub(super) fn new(
        template: ChatRequest,
        source: C,
        policy: Arc<RoutePolicy>,
        log: LogScope,
    ) -> Self {
        Candidates {
            template,
            source,
            policy,
            log,
            upstream: 0,
            earliest_cooling: None,
            earliest_recovery: None,
            forced: false,
            unread: None,
        }
    }

    /// The caller's request.
    pub(super) fn template(&self) -> &ChatRequest {
        &self.template
    }

    /// The call's attempt log.
    pub(super) fn log(&self) -> &LogScope {
        &self.log
    }

    /// How many upstream calls failed.
    pub(super) fn failed_upstream(&self) -> usize {
        self.upstream
    }

    /// Whether the last resort was used: its outcome ends the call.
    pub(super) fn forced(&self) -> bool {
        self.forced
    }
}

impl<C> Candidates<C>
where
    C: CandidateSource,
{
    /// Whether a stream that served may be finished on another candidate.
    pub(super) fn recovers(&self) -> bool {
        self.policy.recovery.enabled_for(self.template.model())
    }

    /// Whether `model` continues a partial answer sent as the last message.
    pub(super) fn prefills(&self, model: &str) -> bool {
        self.policy.recovery.prefills(model)
    }

    /// The next model to call and whether it is the forced last resort, or
    /// `None` when the call must end. The same rules for the first attempt
    /// and for mid-stream recovery: cooling candidates are skipped (and
    /// logged as skips); once no other candidate is left, the
    /// [`AllCooling`] policy decides whether the one that recovers first
    /// gets a single forced call; the fallback bound and the call's
    /// upstream-call cap end the call early.
    pub(super) fn next(&mut self) -> Option<(Arc<str>, bool)> {
        if !self.may_call(0) {
            return None;
        }
        if let Some(model) = self.available() {
            return Some((model, false));
        }
        if self.policy.health.all_cooling() != AllCooling::TryEarliest {
            return None;
        }
        let (model, _) = self.earliest_cooling.clone()?;
        self.forced = true;
        tracing::debug!(
            model = &*model,
            "no candidate left but cooling ones: one call to the earliest"
        );
        Some((model, true))
    }

    /// The next candidate that is not cooling down, by the rules of
    /// [`next`](Self::next) but never the last resort, with `running` calls
    /// not yet in the log counted toward the call's cap: a hedge's.
    pub(super) fn next_for_hedge(&mut self, running: usize) -> Option<Arc<str>> {
        if !self.may_call(running) {
            return None;
        }
        self.available()
    }

    /// Gives back a candidate [`next_for_hedge`](Self::next_for_hedge)
    /// returned but that was not called: it comes next again.
    pub(super) fn put_back(&mut self, model: Arc<str>) {
        self.unread = Some(model);
    }

    /// Whether another call may be made: the last resort was not used, and
    /// the fallback bound and the call's cap (with `running` calls not yet
    /// logged) are not reached.
    fn may_call(&self, running: usize) -> bool {
        let within_budget = self
            .policy
            .max_fallbacks
            .is_none_or(|max| self.upstream <= max);
        !self.forced
            && within_budget
            && !MaxUpstreamCalls::reached_with(&self.template, &self.log, running)
    }

    /// The next candidate that is not cooling down, skipping (and logging)
    /// the cooling ones.
    fn available(&mut self) -> Option<Arc<str>> {
        if let Some(model) = self.unread.take() {
            return Some(model);
        }
        while let Some(model) = self.source.next(&self.policy.health) {
            if let Some(until) = cooling_until(&self.policy.health, &model) {
                let refusal = ChatError::cooling_down(&*model, until);
                self.log
                    .push(Attempt::failure(&*model, &refusal, Duration::ZERO));
                tracing::debug!(model = &*model, "skipped: cooling down");
                self.note_cooling(model, until);
                continue;
            }
            return Some(model);
        }
        None
    }

    /// The request for a call to `model` (marked when it is the forced last
    /// resort, so the cooldown layer lets it through).
    pub(super) fn request_for(&self, model: &str, force: bool) -> ChatRequest {
        let mut request = self.template.clone();
        if request.model() != model {
            request.set_model(model);
        }
        if force {
            request.extensions_mut().insert(ForceAttempt);
        }
        request
    }

    /// Notes a failure of `model` (not a cooling skip): what it says about
    /// the model's recovery, and whether it went upstream.
    pub(super) fn note_failure(&mut self, model: &Arc<str>, e: &ChatError) {
        self.note_error(model, e);
        if e.kind() != ErrorKind::CoolingDown {
            self.upstream += 1;
        }
    }

    /// Whether the failure `e` of `model` moves the call on to the next
    /// candidate: the source re-routed it, or its kind falls back.
    pub(super) fn moves_on(&mut self, model: &str, e: &ChatError) -> bool {
        self.source.reroute(model, e) || self.policy.falls_back_on(e.kind())
    }

    fn note_cooling(&mut self, model: Arc<str>, until: Instant) {
        self.note_recovery(until);
        match &self.earliest_cooling {
            Some((_, earliest)) if *earliest <= until => {}
            _ => self.earliest_cooling = Some((model, until)),
        }
    }

    /// Notes when some candidate may serve again.
    fn note_recovery(&mut self, at: Instant) {
        if self.earliest_recovery.is_none_or(|earliest| at < earliest) {
            self.earliest_recovery = Some(at);
        }
    }

    /// Notes what a failure says about its model's recovery.
    pub(super) fn note_error(&mut self, model: &Arc<str>, e: &ChatError) {
        match (e.kind(), e.cooling_until(), e.retry_after()) {
            (ErrorKind::CoolingDown, Some(until), _) => self.note_cooling(model.clone(), until),
            (_, _, Some(wait)) => {
                if let Some(at) = Instant::now().checked_add(wait) {
                    self.note_recovery(at);
                }
            }
            _ => {}
        }
    }

    /// The error when no candidate is left, given the last candidate's error
    /// and the log: `all_failed` once more than one model was involved, else
    /// the single model's own error; stamped with the earliest known
    /// recovery.
    pub(super) fn final_error(
        &mut self,
        last: Option<ChatError>,
        attempts: Vec<Attempt>,
    ) -> ChatError {
        // Candidates whose failure tripped their breaker recover then.
        for a in attempts.iter().filter(|a| a.upstream) {
            if let Some(until) = cooling_until(&self.policy.health, &a.model) {
                self.note_recovery(until);
            }
        }
        let last = last.or_else(|| {
            // Every candidate cooled and none was called (`FailFast`).
            let (model, until) = self.earliest_cooling.as_ref()?;
            Some(ChatError::cooling_down(&**model, *until))
        });
        let Some(mut last) = last else {
            let mut e = ChatError::new(
                ErrorKind::NotFound,
                format!("no candidate is available for {:?}", self.template.model()),
            );
            e.set_attempts(attempts);
            return e;
        };
        if let Some(at) = self.earliest_recovery {
            last.set_retry_after(Some(at.saturating_duration_since(Instant::now())));
        }
        let first = attempts.first().map(|a| a.model.as_str());
        if attempts.iter().any(|a| Some(a.model.as_str()) != first) {
            ChatError::all_failed(last, attempts)
        } else {
            last.set_attempts(attempts);
            last
        }
    }
}
