//! Usage-aware routing: limits skip full deployments, the strategies beside
//! the weighted draw, tokens estimated then settled; and limits shared by two
//! replicas over the real Redis.
//!
//! In-memory tests run on paused time; the Redis ones on real time.

mod limits;
mod redis;
mod strategies;

#[path = "../redis_support/mod.rs"]
mod redis_support;

use std::sync::Arc;
use std::time::Duration;

use llm_fallback::layers::balance::{BalanceConfig, RoutingStrategy};
use llm_fallback::layers::limit::{
    InMemoryUsage, LimitBuilder, LimitConfig, Limits, RedisUsage, UsageStore,
};
use llm_fallback::mock::{MockProvider, MockReply};
use llm_fallback::settings::Scope;
use llm_fallback::{
    BalanceBuilder, ChatError, ChatRequest, ChatResponse, ErrorKind, LimitLayer, Message,
    SharedRng, WeightedBalanceLayer,
};
use redis_support::{
    cleanup, connect, hget, keys, poll_until, pttl, unique_prefix, within_one_minute, REDIS,
};
use tokio::task::JoinSet;
use tower::util::BoxCloneSyncService;
use tower::{ServiceBuilder, ServiceExt};

pub(crate) const A: &str = "azure/gpt-4o";
pub(crate) const B: &str = "openai/gpt-4o";
pub(crate) const C: &str = "anthropic/claude-3-5-sonnet-20240620";

pub(crate) type Svc = BoxCloneSyncService<ChatRequest, ChatResponse, ChatError>;

pub(crate) fn request(model: &str) -> ChatRequest {
    ChatRequest::new(model, [Message::user("hello")])
}

pub(crate) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub(crate) fn balance(models: &[(&str, f64)]) -> BalanceBuilder {
    WeightedBalanceLayer::builder()
        .route("gpt-4o", models.iter().map(|(m, w)| (*m, *w)))
        .rng(SharedRng::seeded(11))
}

pub(crate) fn service(builder: BalanceBuilder, mock: &MockProvider) -> Svc {
    let layer = builder.build().unwrap();
    Svc::new(ServiceBuilder::new().layer(layer).service(mock.clone()))
}

pub(crate) fn limits() -> LimitBuilder {
    LimitLayer::builder()
}

/// The balance reading the usage of the limit layer right below it.
pub(crate) fn limited(builder: BalanceBuilder, limits: LimitBuilder, mock: &MockProvider) -> Svc {
    let limit = limits.build().unwrap();
    let balance = builder.usage(limit.usage()).build().unwrap();
    Svc::new(
        ServiceBuilder::new()
            .layer(balance)
            .layer(limit)
            .service(mock.clone()),
    )
}

pub(crate) async fn call(service: &Svc, request: ChatRequest) -> Result<ChatResponse, ChatError> {
    service.clone().oneshot(request).await
}
