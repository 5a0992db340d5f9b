//! The one log line of a chat call, written when the call ends: after the
//! JSON answer, the stream's last event, or the caller going away.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::metrics::{Finished, Metrics};
use super::trace::{self, Ended};
use crate::chat::{Attempt, AttemptLog, Usage};
use crate::ErrorKind;

/// How a call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// A complete answer: the JSON body, or a stream up to `[DONE]`.
    Completed,
    /// An error status, or a stream that ended with an in-band error.
    Failed(Option<ErrorKind>),
    /// The caller went away before the end.
    Cancelled,
}

/// What one call did, gathered as it goes and logged once when it ends (on
/// drop at the latest, so a caller that goes away is logged too).
#[derive(Debug)]
pub(crate) struct RequestLog {
    model: String,
    stream: bool,
    started: Instant,
    attempts: AttemptLog,
    served: String,
    first_token: Option<Duration>,
    usage: Option<Usage>,
    status: u16,
    written: bool,
    metrics: Option<Arc<Metrics>>,
    /// The call's span: filled in when the call ends, closed when the last
    /// log holding it drops (after a stream's last event).
    span: tracing::Span,
}

impl RequestLog {
    /// A call for `model` whose attempts `attempts` records, live; recorded
    /// in `metrics` and `span` too when it ends.
    pub(crate) fn new(
        model: &str,
        stream: bool,
        started: Instant,
        attempts: AttemptLog,
        metrics: Option<Arc<Metrics>>,
        span: tracing::Span,
    ) -> Self {
        RequestLog {
            model: model.to_owned(),
            stream,
            started,
            attempts,
            served: String::new(),
            first_token: None,
            usage: None,
            status: 0,
            written: false,
            metrics,
            span,
        }
    }

    /// The call's span.
    pub(crate) fn span(&self) -> &tracing::Span {
        &self.span
    }

    /// The model the stack said served.
    pub(crate) fn served(&mut self, model: &str) {
        model.clone_into(&mut self.served);
    }

    /// The status answered (for a stream that fails after its headers, the
    /// status its in-band error carries).
    pub(crate) fn status(&mut self, status: u16) {
        self.status = status;
    }

    /// The first content reached the caller now (kept if already set).
    pub(crate) fn first_token(&mut self) {
        self.first_token
            .get_or_insert_with(|| self.started.elapsed());
    }

    /// The token counts the answer reported.
    pub(crate) fn usage(&mut self, usage: &Usage) {
        self.usage = Some(usage.clone());
    }

    /// A log that takes over this one's line (for the stream's body);
    /// this one then writes nothing.
    pub(crate) fn hand_over(&mut self) -> RequestLog {
        let log = RequestLog {
            model: std::mem::take(&mut self.model),
            stream: self.stream,
            started: self.started,
            attempts: self.attempts.clone(),
            served: std::mem::take(&mut self.served),
            first_token: self.first_token,
            usage: self.usage.take(),
            status: self.status,
            written: self.written,
            metrics: self.metrics.take(),
            span: self.span.clone(),
        };
        self.written = true;
        log
    }

    /// Writes the line (once).
    pub(crate) fn finish(&mut self, outcome: Outcome) {
        if std::mem::replace(&mut self.written, true) {
            return;
        }
        let attempts = self.attempts.snapshot();
        // A stack without a layer that records attempts still made the
        // call that answered.
        let mut calls = self.attempts.upstream_calls();
        if !self.served.is_empty() {
            calls = calls.max(1);
        }
        let total = self.started.elapsed();
        let served = finished_by(&attempts).unwrap_or(&self.served).as_str();
        let (outcome, error) = match outcome {
            Outcome::Completed => ("completed", None),
            Outcome::Failed(kind) => ("failed", kind),
            Outcome::Cancelled => ("cancelled", None),
        };
        if let Some(metrics) = &self.metrics {
            metrics.record(&Finished {
                model: &self.model,
                served,
                attempts: &attempts,
                status: self.status,
                outcome,
                error,
                total,
                first_token: self.first_token,
                usage: self.usage.as_ref(),
            });
        }
        trace::record(
            &self.span,
            &Ended {
                served,
                attempts: &attempts,
                usage: self.usage.as_ref(),
                status: self.status,
                error: match outcome {
                    "failed" => Some(error.map_or("_OTHER", ErrorKind::as_str)),
                    _ => None,
                },
            },
        );
        tracing::info!(
            // `&str` values: quoted and escaped in text logs, plain strings
            // in JSON ones (`?` would nest quotes there).
            model = self.model.as_str(),
            served,
            recovered_from = ?Recovered(&attempts),
            upstream_calls = calls,
            skips = self.attempts.skips(),
            hedges = super::headers::hedges(&attempts),
            hedge_won = attempts.iter().rev().find(|a| a.is_success()).is_some_and(|a| a.hedge),
            stream = self.stream,
            ttft_ms = self.first_token.unwrap_or(total).as_millis() as u64,
            total_ms = total.as_millis() as u64,
            tokens = %Tokens(self.usage.as_ref()),
            status = self.status,
            outcome = %outcome,
            error = %error.map_or("", ErrorKind::as_str),
            "chat completion",
        );
    }
}

impl Drop for RequestLog {
    fn drop(&mut self) {
        self.finish(Outcome::Cancelled);
    }
}

/// The model whose answer the caller finished with: the last success.
fn finished_by(attempts: &[Attempt]) -> Option<&String> {
    attempts
        .iter()
        .rev()
        .find(|a| a.is_success())
        .map(|a| &a.model)
}

/// The models whose committed streams were cut before another finished the
/// answer: `[]` when none.
struct Recovered<'a>(&'a [Attempt]);

impl fmt::Debug for Recovered<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let recovered = finished_by(self.0).is_some();
        f.debug_list()
            .entries(
                self.0
                    .iter()
                    .filter(|a| recovered && a.error == Some(ErrorKind::StreamInterrupted))
                    .map(|a| &a.model),
            )
            .finish()
    }
}

/// `prompt+completion`, or `unknown` when the answer reported none.
struct Tokens<'a>(Option<&'a Usage>);

impl fmt::Display for Tokens<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(u) => write!(f, "{}+{}", u.prompt_tokens, u.completion_tokens),
            None => f.write_str("unknown"),
        }
    }
}
