//! The Retry layer: counts per model, which kinds, backoff curves,
//! Retry-After, deadlines, the budget, custom policies, the attempt log.

mod attempts;
mod backoff;
mod deadlines;
mod policies;

use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::future::join_all;
use llm_fallback::chat::{Attempt, AttemptLog};
use llm_fallback::layers::retry::{
    Backoff, Decision, ExponentialRetry, Jitter, Retry, RetryBudget, RetryContext, RetryLayer,
};
use llm_fallback::mock::{MockProvider, MockReply};
use llm_fallback::{ChatError, ChatRequest, ChatResponse, ErrorKind, Message, SharedRng};
use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt};

pub(crate) const A: &str = "azure/gpt-4o";
pub(crate) const B: &str = "openai/gpt-4o";

pub(crate) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub(crate) fn request(model: &str) -> ChatRequest {
    ChatRequest::new(model, [Message::user("hello")])
}

pub(crate) fn backoff(base: Duration, factor: f64, cap: Duration, jitter: Jitter) -> Backoff {
    Backoff::builder()
        .base(base)
        .factor(factor)
        .cap(cap)
        .jitter(jitter)
        .build()
        .unwrap()
}

/// 100 ms, 200 ms, 400 ms ... up to 1 s, exactly.
pub(crate) fn exact_backoff() -> Backoff {
    backoff(ms(100), 2.0, ms(1000), Jitter::None)
}

pub(crate) fn layer(max_retries: u32) -> RetryLayer {
    RetryLayer::builder()
        .max_retries(max_retries)
        .backoff(exact_backoff())
        .rng(SharedRng::seeded(1))
        .build()
        .unwrap()
}

/// The gaps between consecutive upstream calls.
pub(crate) fn gaps(mock: &MockProvider) -> Vec<Duration> {
    let calls = mock.calls();
    calls.windows(2).map(|w| w[1].at - w[0].at).collect()
}
