//! The racers of a hedged call: the calls started while an earlier candidate
//! of the route was still running (see [`crate::layers::hedge`]).
//!
//! The engine's first call of a round (its *main* call) runs in its own
//! pinned slot and records in the call's attempt log, as without hedging.
//! Each hedge runs here, boxed, and records in a log of its own
//! ([`AttemptLog::fork`]) so that concurrent racers never mix their entries;
//! that log joins the call's when the racer is done, but only while no main
//! call is running, so each racer's entries stay together.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

use crate::chat::{Attempt, AttemptLog, ChatError, ChatRequest, ErrorKind};
use crate::layers::hedge::Hedge;

/// The message of a racer's attempt that was cancelled because another
/// answered first.
pub(super) const LOST: &str = "cancelled: another racer answered first";

/// The message of an attempt cancelled because its whole call was dropped:
/// the caller left, or the call was itself a racer that lost.
pub(super) const DROPPED: &str = "cancelled: the call was dropped";

/// One hedge in flight.
pub(super) struct Racer<F> {
    pub(super) future: Pin<Box<F>>,
    pub(super) model: Arc<str>,
    pub(super) log: AttemptLog,
    pub(super) started: Instant,
}

/// A hedge whose service was not ready yet.
pub(super) struct Waiting {
    pub(super) request: ChatRequest,
    pub(super) model: Arc<str>,
    pub(super) log: AttemptLog,
}

/// The hedging state of one routed call.
pub(super) struct Hedging<F> {
    pub(super) settings: Arc<Hedge>,
    /// When to start the next hedge: armed for the newest racer.
    timer: Option<Pin<Box<Sleep>>>,
    armed: bool,
    pub(super) racers: Vec<Racer<F>>,
    /// A hedge waiting for the service to be ready.
    pub(super) waiting: Option<Box<Waiting>>,
    /// Logs of racers that ended while a main call ran: they join after it.
    pub(super) unjoined: Vec<AttemptLog>,
    /// How many hedges were started.
    pub(super) started: usize,
}

impl<F> Hedging<F>
where
    F: Future,
{
    /// Hedging per `settings`; the call counts toward the budget.
    pub(super) fn new(settings: Arc<Hedge>) -> Self {
        settings.budget_ref().deposit();
        Hedging {
            settings,
            timer: None,
            armed: false,
            racers: Vec::new(),
            waiting: None,
            unjoined: Vec::new(),
            started: 0,
        }
    }

    /// Arms the timer for a call to `model` that just started, if calls to
    /// it are hedged.
    pub(super) fn arm(&mut self, model: &str, requested: &str) {
        let Some(delay) = self.settings.delay(model, requested) else {
            self.armed = false;
            return;
        };
        let at = Instant::now().checked_add(delay).unwrap_or_else(far_future);
        match &mut self.timer {
            Some(timer) => timer.as_mut().reset(at),
            None => self.timer = Some(Box::pin(tokio::time::sleep_until(at))),
        }
        self.armed = true;
    }

    /// Whether the hedge delay has passed (once per arming).
    pub(super) fn poll_due(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match &mut self.timer {
            Some(timer) if self.armed => {
                ready!(timer.as_mut().poll(cx));
                self.armed = false;
                Poll::Ready(())
            }
            _ => Poll::Pending,
        }
    }

    /// Whether the budget pays for one more hedge.
    pub(super) fn withdraw(&self) -> bool {
        self.settings.budget_ref().withdraw()
    }

    /// Racers running, a waiting one included.
    pub(super) fn running(&self) -> usize {
        self.racers.len() + usize::from(self.waiting.is_some())
    }

    /// Upstream calls of racers that ended but are not in the call's log yet.
    pub(super) fn unjoined_calls(&self) -> usize {
        self.unjoined.iter().map(AttemptLog::upstream_calls).sum()
    }

    /// Polls every racer; the first that is done is removed and returned.
    pub(super) fn poll_racers(&mut self, cx: &mut Context<'_>) -> Poll<(Racer<F>, F::Output)> {
        for i in 0..self.racers.len() {
            if let Poll::Ready(out) = self.racers[i].future.as_mut().poll(cx) {
                return Poll::Ready((self.racers.swap_remove(i), out));
            }
        }
        Poll::Pending
    }

    /// Drops every racer still running (closing its upstream call), logs
    /// each as cancelled, and joins every racer's log to the call's.
    pub(super) fn cancel_all(&mut self, requested: &str, why: &'static str) {
        self.armed = false;
        if let Some(waiting) = self.waiting.take() {
            // Never called: nothing to log.
            waiting.log.join(true);
        }
        for racer in std::mem::take(&mut self.racers) {
            let Racer {
                future,
                model,
                log,
                started,
            } = racer;
            drop(future);
            let ran = started.elapsed();
            self.settings.observe_cancelled(&model, requested, ran);
            log_cancelled(&log, 0, &model, ran, why);
            self.unjoined.push(log);
        }
        self.join_ended();
    }

    /// Joins the logs of the racers that ended to the call's.
    pub(super) fn join_ended(&mut self) {
        for log in self.unjoined.drain(..) {
            log.join(true);
        }
    }
}

/// Logs that the call to `model`, made when `log` had `before` entries, was
/// cancelled (`why`): a new entry, or the one an inner layer already wrote
/// for it, as a success (its answer came too late) or as cancelled (an
/// inner route logged the models it was calling).
pub(super) fn log_cancelled(
    log: &AttemptLog,
    before: usize,
    model: &str,
    latency: Duration,
    why: &'static str,
) {
    let len = log.len();
    let mut logged = false;
    if len > before {
        log.amend(len - 1, |a| {
            if a.is_success() {
                a.error = Some(ErrorKind::Cancelled);
                a.message = why.to_owned();
                logged = true;
            } else if a.error == Some(ErrorKind::Cancelled) {
                logged = true;
            }
        });
    }
    if !logged {
        let cancelled = ChatError::new(ErrorKind::Cancelled, why);
        log.push(Attempt::failure(model, &cancelled, latency));
    }
}

fn far_future() -> Instant {
    // About 30 years, as tokio does for a sleep with no end.
    Instant::now() + Duration::from_secs(86400 * 365 * 30)
}
