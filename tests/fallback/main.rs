//! ProviderFallback: group order, dedicated routes per kind, bounds, cooling, the all-failed error.

mod all_failed;
mod config;
mod cooling;
mod kinds;
mod order;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use llm_fallback::chat::{Attempt, AttemptLog};
use llm_fallback::layers::fallback::{FallbackConfig, FallbackGroups};
use llm_fallback::layers::health::{ForceAttempt, Health, HealthView};
use llm_fallback::mock::{MockProvider, MockReply};
use llm_fallback::{
    ChatError, ChatRequest, ChatResponse, ErrorKind, Message, ProviderFallbackLayer, RouteOptions,
};
use tokio::time::Instant;
use tower::{service_fn, Layer, Service, ServiceExt};

pub(crate) const AZURE: &str = "azure/gpt-4o-mini";
pub(crate) const OPENAI: &str = "openai/gpt-4o-mini";
pub(crate) const GROQ: &str = "groq/llama-3.1-8b";
pub(crate) const BIG: &str = "openai/gpt-4.1";
pub(crate) const BIGGER: &str = "google/gemini-1.5-pro";

pub(crate) fn request(model: &str) -> ChatRequest {
    ChatRequest::new(model, [Message::user("hello")])
}

pub(crate) async fn send<S>(
    layer: &ProviderFallbackLayer,
    inner: S,
    model: &str,
) -> Result<ChatResponse, ChatError>
where
    S: Service<ChatRequest, Response = ChatResponse, Error = ChatError> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    layer.layer(inner).oneshot(request(model)).await
}

pub(crate) fn failing(mock: &MockProvider, model: &str, kind: ErrorKind) {
    mock.always(model, MockReply::error(kind));
}
