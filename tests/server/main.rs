//! The OpenAI-compatible server over a real socket, driven by a real HTTP client.
#![cfg(all(feature = "server", feature = "mock"))]

mod answers;
mod errors;
mod guarding;
mod models_health;
mod shutdown;

#[path = "../waiting/mod.rs"]
mod waiting;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use llm_fallback::chat::{AttemptLog, ChatChunk, ChatFuture, ChatStream};
use llm_fallback::layers::health::{Health, HealthView};
use llm_fallback::mock::{MockProvider, MockReply};
use llm_fallback::server::{self, Server, ATTEMPTS_HEADER, FALLBACKS_HEADER, MODEL_HEADER};
use llm_fallback::{ChatError, ChatRequest, ChatResponse, ErrorKind, Providers};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::time::Instant;
use tower::{service_fn, Service, ServiceExt};

/// A minimal fallback stack: tries an alias's candidates in order through
/// `Providers` (`openai/` and `azure/` both go to the mock, without the
/// prefix), records the attempts, and gives up with `all_failed` like the
/// real fallback layer.
#[derive(Clone)]
pub(crate) struct TinyFallback {
    providers: Providers,
    routes: Arc<HashMap<String, Vec<String>>>,
}

impl TinyFallback {
    fn new(mock: &MockProvider, routes: &[(&str, &[&str])]) -> Self {
        let routes = routes
            .iter()
            .map(|(alias, c)| (alias.to_string(), c.iter().map(|m| m.to_string()).collect()))
            .collect();
        TinyFallback {
            providers: providers(mock),
            routes: Arc::new(routes),
        }
    }
}

impl Service<ChatRequest> for TinyFallback {
    type Response = ChatResponse;
    type Error = ChatError;
    type Future = ChatFuture;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), ChatError>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: ChatRequest) -> ChatFuture {
        let candidates = self
            .routes
            .get(request.model())
            .cloned()
            .unwrap_or_else(|| vec![request.model().to_owned()]);
        let providers = self.providers.clone();
        let log = AttemptLog::of(&mut request);
        ChatFuture::new(async move {
            let mut last = None;
            for model in &candidates {
                let before = log.len();
                let started = Instant::now();
                let result = providers
                    .clone()
                    .oneshot(request.clone().with_model(model))
                    .await;
                log.record_if_missing(before, model, &result, started.elapsed());
                match result {
                    Ok(mut response) => {
                        response.set_attempts(log.snapshot());
                        return Ok(response);
                    }
                    Err(e) if e.kind().is_fallbackable() => last = Some(e),
                    Err(mut e) => {
                        e.set_attempts(log.snapshot());
                        return Err(e);
                    }
                }
            }
            let mut last = last.expect("at least one candidate");
            if candidates.len() > 1 {
                return Err(ChatError::all_failed(last, log.snapshot()));
            }
            last.set_attempts(log.snapshot());
            Err(last)
        })
    }
}

/// `openai/x` and `azure/x` both reach the mock as `x`.
pub(crate) fn providers(mock: &MockProvider) -> Providers {
    Providers::builder()
        .provider("openai", mock.clone())
        .provider("azure", mock.clone())
        .build()
        .unwrap()
}

pub(crate) struct Http {
    base: String,
    client: reqwest::Client,
}

/// Serves `router` on 127.0.0.1:0 with `axum::serve` in a spawned task.
pub(crate) async fn start(router: Router) -> Http {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    Http {
        base: format!("http://{addr}"),
        client: reqwest::Client::new(),
    }
}

impl Http {
    async fn chat(&self, body: &Value) -> reqwest::Response {
        self.client
            .post(format!("{}/v1/chat/completions", self.base))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
    }

    /// A plain request must still be answered.
    async fn still_serves(&self) {
        let response = self.chat(&ask("openai/fine")).await;
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "the server stopped serving"
        );
    }
}

pub(crate) fn ask(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hi there"}]})
}

pub(crate) fn ask_stream(model: &str, include_usage: bool) -> Value {
    let mut body = ask(model);
    body["stream"] = json!(true);
    if include_usage {
        body["stream_options"] = json!({"include_usage": true});
    }
    body
}

pub(crate) fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).map(|v| v.to_str().unwrap())
}

/// The status, `Retry-After` and `error` object of an OpenAI-shaped error.
pub(crate) async fn error_of(response: reqwest::Response) -> (StatusCode, Option<String>, Value) {
    let status = response.status();
    let retry_after = header(&response, "retry-after").map(str::to_owned);
    assert_eq!(header(&response, "content-type"), Some("application/json"));
    let body: Value = response.json().await.unwrap();
    let error = body["error"].clone();
    assert!(error["message"].is_string(), "no message in {body}");
    assert!(error["type"].is_string(), "no type in {body}");
    for key in ["code", "param"] {
        assert!(error.get(key).is_some(), "no {key} in {body}");
    }
    (status, retry_after, error)
}
