//! What the engine does with its racers: start a hedge when the timer
//! fires, settle the first to commit, cancel the others (the state they live
//! in is [`super::hedge::Hedging`]).

use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::time::Instant;
use tower_service::Service;

use super::hedge::{log_cancelled, Racer, Waiting, DROPPED, LOST};
use super::routing::{Lane, Routing};
use super::CandidateSource;
use crate::chat::{Attempt, ChatError, ChatRequest, ChatResponse};

impl<S, C> Routing<S, C>
where
    S: Service<ChatRequest, Response = ChatResponse, Error = ChatError>,
    C: CandidateSource,
{
    /// `model`, which ran in `lane`, answered first: every other racer is
    /// cancelled. Returns the log index of its attempt.
    pub(super) fn won(&mut self, model: &str, lane: Lane, took: Duration) -> usize {
        let Some(hedging) = self.hedging.as_mut() else {
            return self.candidates.log().len().saturating_sub(1);
        };
        hedging.settings.observe(model, took);
        let hedges = hedging.started;
        // The main call's entry is the last before the racers' join.
        let main = self.candidates.log().len().saturating_sub(1);
        hedging.cancel_all(self.candidates.template().model(), LOST);
        let index = match lane {
            Lane::Main { .. } => main,
            Lane::Hedge(log) => {
                let at = log.join(true).unwrap_or(0);
                (at + log.len()).saturating_sub(1)
            }
        };
        if hedges > 0 {
            tracing::debug!(model, hedges, "hedged call answered");
        }
        index
    }

    /// The main call lost to a racer: it was dropped, and is logged as
    /// cancelled.
    pub(super) fn cancel_main(&mut self) {
        if let Some((model, before)) = self.current.take() {
            let latency = self
                .attempt_started
                .map_or(Duration::ZERO, |started| started.elapsed());
            if let Some(hedging) = &self.hedging {
                let requested = self.candidates.template().model();
                hedging
                    .settings
                    .observe_cancelled(&model, requested, latency);
            }
            log_cancelled(self.candidates.log(), before, &model, latency, LOST);
        }
        if let Some(hedging) = self.hedging.as_mut() {
            hedging.join_ended();
        }
    }

    /// Arms the hedge timer for the main call just made (not for the last
    /// resort: no other candidate is left to hedge with).
    pub(super) fn arm_hedge(&mut self) {
        let (Some(hedging), Some((model, _))) = (self.hedging.as_mut(), self.current.as_ref())
        else {
            return;
        };
        if !self.candidates.forced() {
            hedging.arm(model, self.candidates.template().model());
        }
    }

    /// Starts a hedge once the delay has passed, if another candidate is
    /// available and the budget pays for it. `Ready` when one started (or
    /// failed to), so the racers are polled again.
    pub(super) fn poll_hedge(&mut self, cx: &mut Context<'_>, main_running: bool) -> Poll<()> {
        let Some(hedging) = self.hedging.as_mut() else {
            return Poll::Pending;
        };
        if hedging.waiting.is_none() {
            ready!(hedging.poll_due(cx));
            if self.stop.is_some() {
                return Poll::Pending;
            }
            let running = usize::from(main_running) + hedging.running() + hedging.unjoined_calls();
            let Some(model) = self.candidates.next_for_hedge(running) else {
                tracing::debug!("hedge delay passed: no other candidate available");
                return Poll::Pending;
            };
            if !hedging.withdraw() {
                tracing::debug!(model = &*model, "hedge delay passed: hedge budget spent");
                self.candidates.put_back(model);
                return Poll::Pending;
            }
            let log = self.candidates.log().fork();
            let mut request = self.candidates.request_for(&model, false);
            request.extensions_mut().insert(log.clone());
            hedging.waiting = Some(Box::new(Waiting {
                request,
                model,
                log,
            }));
        }
        if !self.svc_ready {
            match ready!(self.svc.poll_ready(cx)) {
                Ok(()) => self.svc_ready = true,
                Err(e) => {
                    let Some(waiting) = hedging.waiting.take() else {
                        return Poll::Ready(());
                    };
                    let failed = Attempt::failure(&*waiting.model, &e, Duration::ZERO);
                    waiting.log.push(failed);
                    hedging.unjoined.push(waiting.log);
                    if !main_running {
                        hedging.join_ended();
                    }
                    self.candidates.note_failure(&waiting.model, &e);
                    self.last_error = Some(e);
                    return Poll::Ready(());
                }
            }
        }
        let Some(waiting) = hedging.waiting.take() else {
            return Poll::Ready(());
        };
        let Waiting {
            request,
            model,
            log,
        } = *waiting;
        self.svc_ready = false;
        tracing::debug!(model = &*model, "hedge started");
        let started = Instant::now();
        let future = Box::pin(self.svc.call(request));
        hedging.arm(&model, self.candidates.template().model());
        hedging.racers.push(Racer {
            future,
            model,
            log,
            started,
        });
        hedging.started += 1;
        Poll::Ready(())
    }
}

impl<S, C> Routing<S, C>
where
    S: Service<ChatRequest>,
{
    /// The call was dropped before it ended, its main call (if
    /// `main_in_flight`) already dropped: every racer is dropped, and each
    /// call still running is logged as cancelled.
    pub(super) fn abandon(&mut self, main_in_flight: bool) {
        if self.done {
            return;
        }
        self.done = true;
        // The main call's entry first: the racers' logs join after it.
        if let (Some((model, before)), true) = (self.current.take(), main_in_flight) {
            let latency = self
                .attempt_started
                .map_or(Duration::ZERO, |started| started.elapsed());
            log_cancelled(self.candidates.log(), before, &model, latency, DROPPED);
        }
        let requested = self.candidates.template().model();
        if let Some(hedging) = self.hedging.as_mut() {
            hedging.cancel_all(requested, DROPPED);
        }
    }
}
