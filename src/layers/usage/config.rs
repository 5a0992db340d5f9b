//! The plain-data settings of usage-aware routing: limits and strategies.

use serde::{Deserialize, Serialize};

/// A deployment's limits per minute, as its provider enforces them. `None`:
/// no limit of that kind.
///
/// ```
/// use llm_fallback::layers::usage::Limits;
/// let limits = Limits::default().with_rpm(60).with_tpm(90_000);
/// assert_eq!(limits, serde_json::from_str(r#"{"rpm": 60, "tpm": 90000}"#).unwrap());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Requests per minute.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rpm: Option<u64>,
    /// Tokens (prompt and completion) per minute.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tpm: Option<u64>,
}

impl Limits {
    /// At most `rpm` requests per minute.
    pub fn with_rpm(mut self, rpm: u64) -> Self {
        self.rpm = Some(rpm);
        self
    }

    /// At most `tpm` tokens per minute.
    pub fn with_tpm(mut self, tpm: u64) -> Self {
        self.tpm = Some(tpm);
        self
    }

    /// Whether any limit is set.
    pub fn is_limited(&self) -> bool {
        self.rpm.is_some() || self.tpm.is_some()
    }

    /// How full the window is, from 0 (unused, or no limit) to 1 and beyond:
    /// the larger of the request and token shares.
    pub fn utilization(&self, requests: u64, tokens: u64) -> f64 {
        let share = |used: u64, limit: Option<u64>| match limit {
            Some(limit) if limit > 0 => used as f64 / limit as f64,
            Some(_) => f64::INFINITY,
            None => 0.0,
        };
        share(requests, self.rpm).max(share(tokens, self.tpm))
    }

    /// Whether one more request of `tokens` fits beside `requests` and `used` tokens.
    pub fn admits(&self, requests: u64, used: u64, tokens: u64) -> bool {
        self.rpm.is_none_or(|rpm| requests < rpm)
            && self
                .tpm
                .is_none_or(|tpm| used.saturating_add(tokens) <= tpm)
    }
}

/// How a balance layer picks among the candidates that are available (not
/// cooling down, not at a limit). Every strategy breaks ties by a weighted
/// draw, so weights still matter among equals.
///
/// In config: `"weighted"`, `"least_busy"`, `"lowest_usage"`, `"lowest_latency"`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoutingStrategy {
    /// A draw by weight (the default).
    #[default]
    Weighted,
    /// The candidate with the fewest calls in flight from this process
    /// (a stream counts until it ends).
    LeastBusy,
    /// The candidate with the most headroom against its limits: the lowest
    /// [`Limits::utilization`] in the current minute. A candidate without
    /// limits has full headroom.
    LowestUsage,
    /// The candidate with the lowest moving average of recent latency (time
    /// to the response, or to the first token of a stream), measured by this
    /// process. Candidates within the latency buffer of the fastest share the
    /// load; a candidate not measured yet is tried first.
    LowestLatency,
}

impl RoutingStrategy {
    /// Whether the strategy needs per-deployment usage counts.
    pub(crate) fn counts_usage(self) -> bool {
        self == RoutingStrategy::LowestUsage
    }
}
