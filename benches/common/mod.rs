//! The instant leaf and the canonical stack shared by the benchmarks and the
//! overhead guard test (`tests/overhead_guard.rs` includes this file).

// Each includer uses only part of this file.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use llm_fallback::chat::{ChatCompletion, Choice, Usage};
use llm_fallback::layers::hedge::Hedge;
use llm_fallback::layers::retry::{Decision, RetryContext};
use llm_fallback::{
    ChatError, ChatRequest, ChatResponse, CooldownLayer, ErrorKind, Message, PrependMessagesLayer,
    ProviderFallbackLayer, RetryLayer, RouteOptions, SharedRng, TimeoutLayer, WeightedBalanceLayer,
};
use serde_json::Map;
use tower::util::BoxCloneSyncService;
use tower::{Service, ServiceBuilder};

/// Answers at once with a prebuilt completion; fails every call to a model
/// whose name starts with `failing`.
#[derive(Clone)]
pub struct InstantLeaf {
    completion: Arc<ChatCompletion>,
    pub calls: Arc<AtomicU64>,
}

impl InstantLeaf {
    pub fn new() -> Self {
        InstantLeaf {
            completion: Arc::new(ChatCompletion {
                id: "chatcmpl-bench".into(),
                model: "gpt-4o-mini".into(),
                choices: vec![Choice {
                    index: 0,
                    message: Message::assistant("Hello! How can I help you today?"),
                    finish_reason: Some("stop".into()),
                    extra: Map::new(),
                }],
                usage: Some(Usage {
                    prompt_tokens: 300,
                    completion_tokens: 9,
                    total_tokens: 309,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            calls: Arc::default(),
        }
    }
}

impl Service<ChatRequest> for InstantLeaf {
    type Response = ChatResponse;
    type Error = ChatError;
    type Future = std::future::Ready<Result<ChatResponse, ChatError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), ChatError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: ChatRequest) -> Self::Future {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if request.model().contains("failing") {
            return std::future::ready(Err(ChatError::new(ErrorKind::Server, "overloaded")
                .with_status(http::StatusCode::SERVICE_UNAVAILABLE)));
        }
        std::future::ready(Ok(ChatResponse::complete(
            request.model().to_owned(),
            (*self.completion).clone(),
        )))
    }
}

pub type Svc = BoxCloneSyncService<ChatRequest, ChatResponse, ChatError>;

/// The canonical stack of DESIGN.md over `leaf`.
pub fn canonical(leaf: InstantLeaf, retries: u32) -> Svc {
    canonical_with(leaf, retries, RouteOptions::new())
}

/// The canonical stack with hedged calls (a delay no call of the instant
/// leaf reaches): what arming the hedge costs on the happy path.
pub fn canonical_hedged(leaf: InstantLeaf, retries: u32) -> Svc {
    let hedge = Hedge::new(Duration::from_secs(1));
    canonical_with(leaf, retries, RouteOptions::new().hedge(hedge))
}

fn canonical_with(leaf: InstantLeaf, retries: u32, options: RouteOptions) -> Svc {
    let cooldown = CooldownLayer::new();
    let health = cooldown.health();
    let retry = RetryLayer::builder()
        // Retries in the bench are immediate: the point is the layers' cost.
        .policy(move |ctx: &RetryContext<'_>| {
            if ctx.attempt() <= retries {
                Decision::Retry(Duration::ZERO)
            } else {
                Decision::Stop("bench: retries used up")
            }
        })
        .no_budget()
        .build()
        .unwrap();
    let stack = ServiceBuilder::new()
        .layer(TimeoutLayer::total(Duration::from_secs(60)))
        .layer(
            ProviderFallbackLayer::builder()
                .group(["azure/gpt-4o-mini", "openai/gpt-4o-mini"])
                .group(["failing/gpt-4o-mini", "openai/gpt-4o-mini"])
                .health(health.clone())
                .options(options.clone())
                .build()
                .unwrap(),
        )
        .layer(
            WeightedBalanceLayer::builder()
                .route("smart", [("azure/gpt-4o", 0.7), ("openai/gpt-4o", 0.3)])
                .rng(SharedRng::seeded(7))
                .health(health)
                .options(options)
                .build()
                .unwrap(),
        )
        .layer(cooldown)
        .layer(retry)
        .layer(TimeoutLayer::attempt(Duration::from_secs(30)))
        .layer(
            PrependMessagesLayer::builder()
                .model("azure/gpt-4o-mini", [Message::system("You are terse.")])
                .model("openai/gpt-4o-mini", [Message::system("You are kind.")])
                .build()
                .unwrap(),
        )
        .service(leaf);
    Svc::new(stack)
}

pub fn request(model: &str, prompt_bytes: usize) -> ChatRequest {
    ChatRequest::new(
        model,
        [
            Message::system("You are a helpful assistant."),
            Message::user("x".repeat(prompt_bytes)),
        ],
    )
    .with_extra("temperature", serde_json::json!(0.2))
}
