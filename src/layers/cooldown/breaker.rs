//! One model's breaker: the closed / open / half-open state machine and its rolling window.

use std::time::Duration;

use tokio::time::Instant;

use crate::clamp::after;

use super::policy::{BreakerSettings, FailureRatio, Verdict};
use super::store::{Admission, Permit, PermitKind, Transition};
use super::window::Window;

/// The state of one model, as [`InMemoryStore`](super::InMemoryStore) keeps it.
/// A remote store can keep one per model as its local view.
#[derive(Debug)]
pub(super) struct Breaker {
    state: State,
    /// Bumped on every open and close: permits from an older state are stale.
    generation: u64,
    next_probe: u64,
    consecutive: u32,
    window: Option<Window>,
    /// The cooldown a failed probe reopens for (grows with `Growth`).
    cooldown: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Closed,
    /// Once `until` has passed, the next call becomes the probe.
    Open {
        until: Instant,
    },
    /// Half-open: probe `id`, admitted at `since`, is running.
    Probing {
        id: u64,
        since: Instant,
    },
}

impl Breaker {
    pub(super) fn new(settings: &BreakerSettings, now: Instant) -> Self {
        Breaker {
            state: State::Closed,
            generation: 0,
            next_probe: 0,
            consecutive: 0,
            window: settings
                .failure_ratio
                .map(|rule| Window::new(rule.window, now)),
            cooldown: settings.cooldown,
        }
    }

    /// The permit a model without a breaker yet gets: valid for the breaker
    /// created when its outcome is recorded.
    pub(super) fn fresh_permit() -> Permit {
        Permit {
            kind: PermitKind::Normal,
            token: 0,
        }
    }

    pub(super) fn admit(&mut self, force: bool, now: Instant) -> Admission {
        let refuse = |until: Instant| match force {
            true => Admission::Admit(Permit {
                kind: PermitKind::Forced,
                token: self.generation,
            }),
            false => Admission::Refuse { until },
        };
        match self.state {
            State::Closed => Admission::Admit(Permit {
                kind: PermitKind::Normal,
                token: self.generation,
            }),
            State::Open { until } if now < until => refuse(until),
            State::Open { .. } => {
                let id = self.next_probe;
                self.next_probe += 1;
                self.state = State::Probing { id, since: now };
                Admission::Admit(Permit {
                    kind: PermitKind::Probe,
                    token: id,
                })
            }
            State::Probing { since, .. } => refuse(after(since, self.cooldown).max(now)),
        }
    }

    pub(super) fn record(
        &mut self,
        permit: Permit,
        verdict: Verdict,
        settings: &BreakerSettings,
        now: Instant,
    ) -> Transition {
        let current = match permit.kind {
            PermitKind::Normal => self.state == State::Closed && permit.token == self.generation,
            PermitKind::Probe => {
                matches!(self.state, State::Probing { id, .. } if id == permit.token)
            }
            PermitKind::Forced => permit.token == self.generation,
        };
        if !current {
            // The provider's own word on how long to wait still holds.
            return match verdict {
                Verdict::Trip(Some(wait)) => self.extend(now, after(now, wait)),
                _ => Transition::Unchanged,
            };
        }
        match (permit.kind, verdict) {
            (_, Verdict::Ignore) => {
                if let State::Probing { since, .. } = self.state {
                    self.state = State::Open { until: since };
                }
                Transition::Unchanged
            }
            (PermitKind::Normal, verdict) => self.closed_outcome(verdict, settings, now),
            (_, Verdict::Success) => self.close(settings),
            (PermitKind::Probe, Verdict::Failure | Verdict::Trip(None)) => {
                self.cooldown = settings.next_cooldown(self.cooldown);
                self.open(now, self.cooldown)
            }
            (PermitKind::Probe, Verdict::Trip(Some(wait))) => self.open(now, wait),
            (PermitKind::Forced, Verdict::Failure | Verdict::Trip(None)) => {
                self.extend(now, after(now, self.cooldown))
            }
            (PermitKind::Forced, Verdict::Trip(Some(wait))) => self.extend(now, after(now, wait)),
        }
    }

    fn closed_outcome(
        &mut self,
        verdict: Verdict,
        settings: &BreakerSettings,
        now: Instant,
    ) -> Transition {
        let failed = match verdict {
            Verdict::Success => false,
            Verdict::Failure => true,
            Verdict::Trip(wait) => {
                self.cooldown = settings.cooldown;
                return self.open(now, wait.unwrap_or(settings.cooldown));
            }
            Verdict::Ignore => return Transition::Unchanged,
        };
        if let Some(window) = &mut self.window {
            window.add(now, true, failed);
        }
        if !failed {
            self.consecutive = 0;
            return Transition::Unchanged;
        }
        self.consecutive = self.consecutive.saturating_add(1);
        let by_count =
            settings.consecutive_failures > 0 && self.consecutive >= settings.consecutive_failures;
        let by_ratio = match (&self.window, settings.failure_ratio) {
            (Some(window), Some(rule)) => trips(window, now, &rule),
            _ => false,
        };
        if by_count || by_ratio {
            self.cooldown = settings.cooldown;
            return self.open(now, settings.cooldown);
        }
        Transition::Unchanged
    }

    fn open(&mut self, now: Instant, cooldown: Duration) -> Transition {
        let until = after(now, cooldown);
        self.state = State::Open { until };
        self.reset();
        Transition::Opened { until, cooldown }
    }

    /// Keeps an open breaker open at least until `until`; the transition
    /// says how long it stays open from `now`, not by how much it grew.
    fn extend(&mut self, now: Instant, until: Instant) -> Transition {
        match &mut self.state {
            State::Open { until: current } if *current < until => {
                *current = until;
                let cooldown = until.saturating_duration_since(now);
                Transition::Opened { until, cooldown }
            }
            _ => Transition::Unchanged,
        }
    }

    fn close(&mut self, settings: &BreakerSettings) -> Transition {
        self.state = State::Closed;
        self.cooldown = settings.cooldown;
        self.reset();
        Transition::Closed
    }

    fn reset(&mut self) {
        self.generation += 1;
        self.consecutive = 0;
        if let Some(window) = &mut self.window {
            window.clear();
        }
    }

    /// The probe's call was cancelled: the next call probes instead.
    pub(super) fn release(&mut self, permit: Permit) {
        match self.state {
            State::Probing { id, since }
                if permit.kind == PermitKind::Probe && id == permit.token =>
            {
                self.state = State::Open { until: since };
            }
            _ => {}
        }
    }

    pub(super) fn cooling_until(&self, now: Instant) -> Option<Instant> {
        match self.state {
            State::Closed => None,
            State::Open { until } => Some(until),
            State::Probing { since, .. } => Some(after(since, self.cooldown).max(now)),
        }
    }

    /// Holds nothing worth keeping: closed, with no failure on record.
    pub(super) fn is_idle(&self, now: Instant) -> bool {
        self.state == State::Closed
            && self.consecutive == 0
            && self.window.as_ref().is_none_or(|w| w.totals(now).1 == 0)
    }
}

/// Whether the failures over the window trip `rule`.
fn trips(window: &Window, now: Instant, rule: &FailureRatio) -> bool {
    let (calls, failures) = window.totals(now);
    calls >= rule.min_calls && f64::from(failures) >= rule.ratio * f64::from(calls)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_extension_reports_how_long_the_breaker_stays_open() {
        let settings = BreakerSettings {
            consecutive_failures: 1,
            failure_ratio: None,
            cooldown: Duration::from_secs(5),
            growth: None,
        };
        let start = Instant::now();
        let mut breaker = Breaker::new(&settings, start);
        let Admission::Admit(permit) = breaker.admit(false, start) else {
            panic!("a closed breaker admits");
        };
        let opened = breaker.record(permit, Verdict::Failure, &settings, start);
        assert_eq!(
            opened,
            Transition::Opened {
                until: start + Duration::from_secs(5),
                cooldown: Duration::from_secs(5)
            }
        );
        // A late 429 with Retry-After: 30 from a call admitted before it opened.
        let later = start + Duration::from_secs(1);
        let extended = breaker.record(
            permit,
            Verdict::Trip(Some(Duration::from_secs(30))),
            &settings,
            later,
        );
        assert_eq!(
            extended,
            Transition::Opened {
                until: later + Duration::from_secs(30),
                cooldown: Duration::from_secs(30)
            },
            "open for 30 s from now, not the 26 s it grew by"
        );
    }
}
