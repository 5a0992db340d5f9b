//! The response headers that tell a caller what happened behind the endpoint.

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::chat::Attempt;

/// The model that served the answer, `provider/model`.
pub const MODEL_HEADER: &str = "x-llm-fallback-model";
/// How many upstream calls were made (skips of cooling models not counted).
pub const ATTEMPTS_HEADER: &str = "x-llm-fallback-attempts";
/// How many other models were tried: distinct models called, minus one.
pub const FALLBACKS_HEADER: &str = "x-llm-fallback-fallbacks";
/// How many hedges were started (see
/// [`layers::hedge`](crate::layers::hedge)): calls to the next candidate
/// made while a slow one still ran. Only present when there was one; the
/// racer that won is [`MODEL_HEADER`].
pub const HEDGES_HEADER: &str = "x-llm-fallback-hedges";
/// `false` on errors the gateway has already retried and fallen back on:
/// the header the official OpenAI SDKs read before retrying by themselves.
pub const SHOULD_RETRY_HEADER: &str = "x-should-retry";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AttemptCounts {
    /// Upstream calls.
    pub(crate) attempts: usize,
    /// Distinct models called, minus one.
    pub(crate) fallbacks: usize,
    /// Models called as a hedge.
    pub(crate) hedges: usize,
}

impl AttemptCounts {
    /// Counts from an attempt log. `served` is the model that answered: a
    /// stack without any layer that records attempts still made one call.
    pub(crate) fn of(log: &[Attempt], served: Option<&str>) -> Self {
        let mut models: Vec<&str> = Vec::new();
        let mut attempts = 0;
        for a in log.iter().filter(|a| a.upstream) {
            attempts += 1;
            if !models.contains(&a.model.as_str()) {
                models.push(&a.model);
            }
        }
        if let Some(served) = served {
            attempts = attempts.max(1);
            if !served.is_empty() && !models.contains(&served) {
                models.push(served);
            }
        }
        AttemptCounts {
            attempts,
            fallbacks: models.len().saturating_sub(1),
            hedges: hedges(log),
        }
    }
}

impl AttemptCounts {
    /// Upstream calls that repeated a model already called (key rotations
    /// included).
    pub(crate) fn retries(&self) -> usize {
        let models = if self.attempts == 0 {
            0
        } else {
            self.fallbacks + 1
        };
        self.attempts.saturating_sub(models)
    }
}

/// How many hedges a log shows: the models called as hedges (a call tries
/// each candidate once; a hedge's retries are the same hedge).
pub(crate) fn hedges(log: &[Attempt]) -> usize {
    let mut models: Vec<&str> = Vec::new();
    for a in log.iter().filter(|a| a.hedge && a.upstream) {
        if !models.contains(&a.model.as_str()) {
            models.push(&a.model);
        }
    }
    models.len()
}

/// Writes the served model (when known) and the counts.
pub(crate) fn attempt_headers(
    headers: &mut HeaderMap,
    served: Option<&str>,
    counts: &AttemptCounts,
) {
    if let Some(value) = served.and_then(|m| HeaderValue::from_str(m).ok()) {
        headers.insert(HeaderName::from_static(MODEL_HEADER), value);
    }
    headers.insert(
        HeaderName::from_static(ATTEMPTS_HEADER),
        HeaderValue::from(counts.attempts),
    );
    headers.insert(
        HeaderName::from_static(FALLBACKS_HEADER),
        HeaderValue::from(counts.fallbacks),
    );
    if counts.hedges > 0 {
        headers.insert(
            HeaderName::from_static(HEDGES_HEADER),
            HeaderValue::from(counts.hedges),
        );
    }
}
