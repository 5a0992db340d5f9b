//! Cooldown: per-model circuit breaking, half-open probes, health for the routing layers.

mod classify;
mod half_open;
mod store;
mod tripping;

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use llm_fallback::chat::{PerModel, TimeoutKind};
use llm_fallback::layers::cooldown::{
    default_verdict, Admission, BreakerSettings, CooldownBuilder, FailureRatio, Permit, Transition,
    Verdict,
};
use llm_fallback::layers::cooldown::{CooldownStore, InMemoryStore};
use llm_fallback::layers::health::{AllCooling, ForceAttempt, HealthView};
use llm_fallback::mock::{MockProvider, MockReply};
use llm_fallback::store::StoreFuture;
use llm_fallback::{
    ChatError, ChatRequest, ChatResponse, CooldownLayer, ErrorKind, Message, TimeoutLayer,
};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tower::{Service, ServiceBuilder, ServiceExt};

pub(crate) const AZURE: &str = "azure/gpt-4o";
pub(crate) const OPENAI: &str = "openai/gpt-4o";

pub(crate) fn request(model: &str) -> ChatRequest {
    ChatRequest::new(model, [Message::user("hello")])
}

pub(crate) fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// A cooldown stack over `mock`, and the layer (for its health). Calls here
/// name the model directly, which by default gets one forced call when it
/// cools (`AllCooling::TryEarliest`); these tests watch the breaker itself,
/// so they fail fast.
pub(crate) fn stack(
    builder: CooldownBuilder,
    mock: &MockProvider,
) -> (
    CooldownLayer,
    impl Service<ChatRequest, Response = ChatResponse, Error = ChatError, Future: Send> + Clone + Send,
) {
    let layer = builder
        .when_all_cooling(AllCooling::FailFast)
        .build()
        .unwrap();
    let service = ServiceBuilder::new()
        .layer(layer.clone())
        .service(mock.clone());
    (layer, service)
}

pub(crate) async fn call<S>(service: &S, model: &str) -> Result<ChatResponse, ChatError>
where
    S: Service<ChatRequest, Response = ChatResponse, Error = ChatError> + Clone,
{
    service.clone().oneshot(request(model)).await
}
