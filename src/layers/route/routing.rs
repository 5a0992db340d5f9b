//! The engine's state between attempts, and what it does with an outcome.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tower_service::Service;
use tracing::Span;

use super::candidates::Candidates;
use super::hedge::Hedging;
use super::CandidateSource;
use crate::chat::{AttemptLog, ChatError, ChatRequest, ChatResponse};

/// Everything the engine keeps between attempts. Boxed: one allocation costs
/// less than moving ~600 bytes through every layer's future on the way out.
pub(crate) struct Routing<S, C>
where
    S: Service<ChatRequest>,
{
    pub(super) svc: S,
    pub(super) svc_ready: bool,
    pub(super) candidates: Candidates<C>,
    pub(super) span: Span,
    /// When the first call started (cooling skips before it take no time).
    pub(super) started: Option<Instant>,
    /// The candidate being called: its id and the log length before the call.
    pub(super) current: Option<(Arc<str>, usize)>,
    /// When the call to it was made.
    pub(super) attempt_started: Option<Instant>,
    /// The request waiting for the service to be ready.
    pub(super) pending: Option<ChatRequest>,
    pub(super) last_error: Option<ChatError>,
    /// A failure that does not fall back, from a racer while others ran: it
    /// ends the call if none of them answers.
    pub(super) stop: Option<ChatError>,
    pub(super) done: bool,
    /// The racers of a hedged call; `None` when the route does not hedge.
    pub(super) hedging: Option<Hedging<S::Future>>,
}

/// Where a settled call ran: the main slot (recording in the call's log,
/// which had `before` entries when it started) or a hedge (in its own log).
pub(super) enum Lane {
    Main { before: usize },
    Hedge(AttemptLog),
}

impl<S, C> Routing<S, C>
where
    S: Service<ChatRequest, Response = ChatResponse, Error = ChatError>,
    C: CandidateSource,
{
    /// The request for the next candidate to call, or the final error.
    pub(super) fn pick(&mut self) -> Result<ChatRequest, ChatError> {
        match self.candidates.next() {
            Some((model, force)) => {
                let request = self.candidates.request_for(&model, force);
                self.current = Some((model, self.candidates.log().len()));
                self.attempt_started = None;
                Ok(request)
            }
            None => Err(self.give_up()),
        }
    }

    /// Handles the outcome of a call to `model` that ran in `lane`: `Some`
    /// ends the call, with the log index of the attempt that served.
    pub(super) fn settle(
        &mut self,
        model: Arc<str>,
        lane: Lane,
        latency: Duration,
        result: Result<ChatResponse, ChatError>,
    ) -> Option<(Result<ChatResponse, ChatError>, usize)> {
        let main_running = self.current.is_some();
        match &lane {
            Lane::Main { before } => {
                let log = self.candidates.log();
                log.record_if_missing(*before, &model, &result, latency);
            }
            Lane::Hedge(log) => log.record_if_missing(0, &model, &result, latency),
        }
        let e = match result {
            Ok(response) => {
                let index = self.won(&model, lane, latency);
                self.finish(Some(response.model()), self.candidates.log().len());
                let mut result = Ok(response);
                self.candidates.log().attach(&mut result);
                return Some((result, index));
            }
            Err(e) => e,
        };
        let log = self.candidates.log();
        let attempts = log.len();
        tracing::debug!(
            model = &*model,
            attempt = attempts,
            outcome = %e.kind(),
            latency_ms = latency.as_secs_f64() * 1e3,
            hedge = matches!(lane, Lane::Hedge(_)),
            "candidate failed"
        );
        // A racer's entries join the call's log once no main call is
        // writing there, so each call's entries stay together.
        if let Some(hedging) = self.hedging.as_mut() {
            if let Lane::Hedge(log) = lane {
                hedging.unjoined.push(log);
            }
            if !main_running {
                hedging.join_ended();
            }
        }
        self.candidates.note_failure(&model, &e);
        if self.candidates.forced() {
            self.last_error = Some(e);
            return Some((Err(self.give_up()), 0));
        }
        let others_running =
            self.current.is_some() || self.hedging.as_ref().is_some_and(|h| h.running() > 0);
        let mut e = if self.candidates.moves_on(&model, &e) {
            match self.stop.take() {
                Some(stop) if !others_running => stop,
                stop => {
                    self.stop = stop;
                    self.last_error = Some(e);
                    return None;
                }
            }
        } else if others_running {
            // Racers still running may answer; if none does, this ends it.
            self.stop.get_or_insert(e);
            return None;
        } else {
            e
        };
        // The kind does not fall back: the caller sees the reason as it is.
        self.finish(None, self.candidates.log().len());
        self.candidates.log().attach_error(&mut e);
        Some((Err(e), 0))
    }

    /// The error when no candidate is left (see [`Candidates::final_error`]).
    pub(super) fn give_up(&mut self) -> ChatError {
        let attempts = self.candidates.log().snapshot();
        self.finish(None, attempts.len());
        let last = self.last_error.take();
        self.candidates.final_error(last, attempts)
    }

    pub(super) fn finish(&mut self, served: Option<&str>, attempts: usize) {
        self.done = true;
        // Reading the clock costs more than the rest of this: only when traced.
        if self.span.is_disabled() {
            return;
        }
        if let Some(served) = served {
            self.span.record("served", served);
        }
        self.span.record("attempts", attempts);
        if let Some(started) = self.started {
            self.span
                .record("latency_ms", started.elapsed().as_secs_f64() * 1e3);
        }
    }
}
