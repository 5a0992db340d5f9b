//! WeightedBalance: weighted draws, renormalised re-draws, named and zero-weight candidates, sticky keys.

mod config;
mod draws;
mod health;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use llm_fallback::layers::balance::{BalanceConfig, StickyKey};
use llm_fallback::layers::health::{ForceAttempt, Health, HealthView};
use llm_fallback::mock::{MockProvider, MockReply};
use llm_fallback::{
    ChatError, ChatRequest, ChatResponse, ErrorKind, Message, SharedRng, WeightedBalance,
    WeightedBalanceLayer,
};
use tokio::time::Instant;
use tower::{service_fn, Layer, Service, ServiceExt};

pub(crate) const A: &str = "azure/gpt-4o";
pub(crate) const B: &str = "openai/gpt-4o";
pub(crate) const C: &str = "anthropic/claude-3-5-sonnet-20240620";
pub(crate) const Z: &str = "azure-eu/gpt-4o";

pub(crate) fn request(model: &str) -> ChatRequest {
    ChatRequest::new(model, [Message::user("hello")])
}

pub(crate) fn layer(weights: [(&str, f64); 3], seed: u64) -> WeightedBalanceLayer {
    WeightedBalanceLayer::builder()
        .route("gpt-4o", weights)
        .rng(SharedRng::seeded(seed))
        .build()
        .unwrap()
}

pub(crate) async fn send<S>(
    service: &mut WeightedBalance<S>,
    req: ChatRequest,
) -> Result<ChatResponse, ChatError>
where
    S: Service<ChatRequest, Response = ChatResponse, Error = ChatError> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    service.ready().await?.call(req).await
}

pub(crate) fn share(counts: &HashMap<String, usize>, model: &str, total: usize) -> f64 {
    *counts.get(model).unwrap_or(&0) as f64 / total as f64
}
