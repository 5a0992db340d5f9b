//! The OpenAI-compatible server over a real socket, driven by a real HTTP client.
#![cfg(all(feature = "server", feature = "mock"))]

#[path = "waiting/mod.rs"]
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

// ---------------------------------------------------------------- harness

/// A minimal fallback stack: tries an alias's candidates in order through
/// `Providers` (`openai/` and `azure/` both go to the mock, without the
/// prefix), records the attempts, and gives up with `all_failed` like the
/// real fallback layer.
#[derive(Clone)]
struct TinyFallback {
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
fn providers(mock: &MockProvider) -> Providers {
    Providers::builder()
        .provider("openai", mock.clone())
        .provider("azure", mock.clone())
        .build()
        .unwrap()
}

struct Http {
    base: String,
    client: reqwest::Client,
}

/// Serves `router` on 127.0.0.1:0 with `axum::serve` in a spawned task.
async fn start(router: Router) -> Http {
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

fn ask(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hi there"}]})
}

fn ask_stream(model: &str, include_usage: bool) -> Value {
    let mut body = ask(model);
    body["stream"] = json!(true);
    if include_usage {
        body["stream_options"] = json!({"include_usage": true});
    }
    body
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).map(|v| v.to_str().unwrap())
}

/// The status, `Retry-After` and `error` object of an OpenAI-shaped error.
async fn error_of(response: reqwest::Response) -> (StatusCode, Option<String>, Value) {
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

/// The `data:` payloads of an SSE body, checking the framing byte for byte.
fn sse_events(text: &str) -> Vec<&str> {
    assert!(text.ends_with("\n\n"), "unterminated event in {text:?}");
    text.split_terminator("\n\n")
        .map(|event| {
            let data = event
                .strip_prefix("data: ")
                .expect("every event is `data: ...`");
            assert!(!data.contains('\n'), "one line per event: {event:?}");
            data
        })
        .collect()
}

fn chunks_of(events: &[&str]) -> Vec<Value> {
    events
        .iter()
        .filter(|e| **e != "[DONE]")
        .map(|e| serde_json::from_str(e).unwrap())
        .collect()
}

fn text_of(chunks: &[Value]) -> String {
    chunks
        .iter()
        .flat_map(|c| c["choices"].as_array().cloned().unwrap_or_default())
        .filter_map(|c| c["delta"]["content"].as_str().map(str::to_owned))
        .collect()
}

// ---------------------------------------------------------------- answers

#[tokio::test]
async fn json_answer_names_the_served_model_and_what_it_took() {
    let mock = MockProvider::new();
    mock.script("a", [MockReply::error(ErrorKind::Server)]);
    mock.always("b", MockReply::text("hello from b"));
    let stack = TinyFallback::new(&mock, &[("smart", &["openai/a", "azure/b"])]);
    let http = start(
        Server::builder(stack)
            .route("smart", ["openai/a", "azure/b"])
            .build()
            .unwrap(),
    )
    .await;

    let response = http.chat(&ask("smart")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "content-type"), Some("application/json"));
    assert_eq!(header(&response, MODEL_HEADER), Some("azure/b"));
    assert_eq!(header(&response, ATTEMPTS_HEADER), Some("2"));
    assert_eq!(header(&response, FALLBACKS_HEADER), Some("1"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "azure/b");
    assert_eq!(body["choices"][0]["message"]["content"], "hello from b");
    assert_eq!(body["usage"]["completion_tokens"], 3);
    assert_eq!(mock.called_models(), ["a", "b"]);
}

#[tokio::test]
async fn sse_answer_is_framed_like_openai_and_ends_with_done() {
    // The provider names its chunks `a`; the caller sees the served id.
    let mock = MockProvider::new();
    mock.always("a", MockReply::text("one two three"));
    let http = start(Server::builder(providers(&mock)).build().unwrap()).await;

    let response = http.chat(&ask_stream("openai/a", false)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "content-type"), Some("text/event-stream"));
    assert_eq!(header(&response, MODEL_HEADER), Some("openai/a"));
    assert_eq!(header(&response, ATTEMPTS_HEADER), Some("1"));
    assert_eq!(header(&response, FALLBACKS_HEADER), Some("0"));
    let text = response.text().await.unwrap();
    assert!(text.ends_with("data: [DONE]\n\n"), "{text:?}");
    let events = sse_events(&text);
    assert_eq!(events.iter().filter(|e| **e == "[DONE]").count(), 1);
    let chunks = chunks_of(&events);
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(text_of(&chunks), "one two three");
    for chunk in &chunks {
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert_eq!(chunk["model"], "openai/a");
    }
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "stop"
    );
}

#[tokio::test]
async fn usage_chunk_is_sent_only_when_the_caller_asks_for_it() {
    // The mock always ends its streams with a usage-only chunk, as a lower
    // layer asking upstream for usage would.
    let mock = MockProvider::new();
    mock.always("openai/a", MockReply::text("one two three"));
    let http = start(Server::builder(mock).build().unwrap()).await;

    let text = http
        .chat(&ask_stream("openai/a", false))
        .await
        .text()
        .await
        .unwrap();
    let chunks = chunks_of(&sse_events(&text));
    assert!(chunks.iter().all(|c| c.get("usage").is_none()), "{text}");
    assert!(chunks
        .iter()
        .all(|c| !c["choices"].as_array().unwrap().is_empty()));

    let text = http
        .chat(&ask_stream("openai/a", true))
        .await
        .text()
        .await
        .unwrap();
    let chunks = chunks_of(&sse_events(&text));
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"], json!([]));
    assert_eq!(last["usage"]["completion_tokens"], 3);
    assert_eq!(last["usage"]["prompt_tokens"], 2);
    assert_eq!(text_of(&chunks), "one two three");
}

#[tokio::test]
async fn a_stream_fault_ends_with_an_error_event_and_no_done() {
    let mock = MockProvider::new();
    mock.always("openai/a", MockReply::stream_cut("one two three four", 2));
    let http = start(Server::builder(mock).build().unwrap()).await;

    let response = http.chat(&ask_stream("openai/a", true)).await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "the stream was committed"
    );
    let text = response.text().await.unwrap();
    assert!(!text.contains("[DONE]"), "{text}");
    let events = sse_events(&text);
    let (error, chunks) = events.split_last().unwrap();
    assert_eq!(text_of(&chunks_of(chunks)), "one two ");
    let error: Value = serde_json::from_str(error).unwrap();
    assert_eq!(error["error"]["type"], "upstream_error");
    assert_eq!(error["error"]["code"], "stream_interrupted");
    assert!(error["error"]["message"]
        .as_str()
        .unwrap()
        .contains("cut after 2 chunks"));
    http.still_serves().await;
}

// ---------------------------------------------------------------- errors

#[tokio::test]
async fn failures_map_to_fitting_openai_statuses() {
    let cases = [
        (
            MockReply::error(ErrorKind::RateLimited).with_retry_after(Duration::from_millis(2500)),
            429,
            "rate_limit_exceeded",
            Some("3"),
        ),
        (
            MockReply::error(ErrorKind::RateLimited),
            429,
            "rate_limit_exceeded",
            None,
        ),
        (MockReply::error(ErrorKind::Timeout), 504, "timeout", None),
        (
            MockReply::error(ErrorKind::Server),
            502,
            "upstream_error",
            None,
        ),
        (
            MockReply::error(ErrorKind::Connect),
            502,
            "upstream_unreachable",
            None,
        ),
        (
            MockReply::error(ErrorKind::Auth),
            502,
            "upstream_auth_failed",
            None,
        ),
        (
            MockReply::error(ErrorKind::NotFound),
            404,
            "model_not_found",
            None,
        ),
        (
            MockReply::error(ErrorKind::ContextWindowExceeded),
            400,
            "context_length_exceeded",
            None,
        ),
        (
            MockReply::error(ErrorKind::ContentFilter),
            400,
            "content_filter",
            None,
        ),
        (
            MockReply::error(ErrorKind::Config),
            500,
            "config_error",
            None,
        ),
    ];
    let mock = MockProvider::new();
    let http = start(Server::builder(mock.clone()).build().unwrap()).await;
    for (i, (reply, status, code, retry_after)) in cases.into_iter().enumerate() {
        let model = format!("p{i}/m");
        mock.always(&model, reply);
        let (got, got_retry_after, error) = error_of(http.chat(&ask(&model)).await).await;
        assert_eq!(got.as_u16(), status, "case {i}: {error}");
        assert_eq!(error["code"], code, "case {i}");
        assert_eq!(got_retry_after.as_deref(), retry_after, "case {i}");
    }
    let bad = MockReply::error(ErrorKind::BadRequest).with_message("temperature must be <= 2");
    mock.always("p/bad", bad);
    let (status, _, error) = error_of(http.chat(&ask("p/bad")).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["type"], "invalid_request_error");
    assert!(error["message"]
        .as_str()
        .unwrap()
        .contains("temperature must be <= 2"));
    http.still_serves().await;
}

#[tokio::test]
async fn all_candidates_failing_is_a_502_listing_every_attempt() {
    let mock = MockProvider::new();
    mock.always("a", MockReply::error(ErrorKind::Server));
    mock.always("b", MockReply::error(ErrorKind::Auth));
    let stack = TinyFallback::new(&mock, &[("smart", &["openai/a", "azure/b"])]);
    let http = start(
        Server::builder(stack)
            .route("smart", ["openai/a", "azure/b"])
            .build()
            .unwrap(),
    )
    .await;

    let response = http.chat(&ask("smart")).await;
    assert_eq!(header(&response, ATTEMPTS_HEADER), Some("2"));
    assert_eq!(header(&response, FALLBACKS_HEADER), Some("1"));
    let (status, _, error) = error_of(response).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(error["code"], "all_candidates_failed");
    let message = error["message"].as_str().unwrap();
    assert!(message.starts_with("all 2 candidates failed"), "{message}");
    assert!(
        message.contains("openai/a: 500 Internal Server Error"),
        "{message}"
    );
    assert!(message.contains("azure/b: 401 Unauthorized"), "{message}");
}

#[tokio::test]
async fn every_candidate_rate_limited_stays_a_429_with_retry_after() {
    let mock = MockProvider::new();
    mock.always("a", MockReply::error(ErrorKind::RateLimited));
    let limited = MockReply::error(ErrorKind::RateLimited).with_retry_after(Duration::from_secs(4));
    mock.always("b", limited);
    let stack = TinyFallback::new(&mock, &[("smart", &["openai/a", "azure/b"])]);
    let http = start(
        Server::builder(stack)
            .route("smart", ["openai/a", "azure/b"])
            .build()
            .unwrap(),
    )
    .await;

    let (status, retry_after, error) = error_of(http.chat(&ask("smart")).await).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(retry_after.as_deref(), Some("4"));
    assert_eq!(error["type"], "rate_limit_error");
    assert!(error["message"]
        .as_str()
        .unwrap()
        .contains("all 2 candidates failed"));
}

#[tokio::test]
async fn a_model_cooling_down_is_a_503_with_retry_after() {
    let cooling = service_fn(|request: ChatRequest| async move {
        Err::<ChatResponse, _>(ChatError::cooling_down(
            request.model(),
            Instant::now() + Duration::from_secs(30),
        ))
    });
    let http = start(Server::builder(cooling).build().unwrap()).await;

    let (status, retry_after, error) = error_of(http.chat(&ask("openai/a")).await).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(retry_after.as_deref(), Some("30"));
    assert_eq!(error["code"], "cooling_down");
}

#[tokio::test]
async fn a_fault_before_the_first_chunk_is_an_honest_status() {
    let failing = service_fn(|request: ChatRequest| async move {
        let error = ChatError::new(ErrorKind::Server, "overloaded").with_model(request.model());
        let stream = ChatStream::from_items(vec![Err::<ChatChunk, _>(error)]);
        Ok::<_, ChatError>(ChatResponse::stream(request.model(), stream))
    });
    let http = start(Server::builder(failing).build().unwrap()).await;

    let (status, _, error) = error_of(http.chat(&ask_stream("openai/a", false)).await).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert!(error["message"].as_str().unwrap().contains("overloaded"));
}

// ---------------------------------------------------------------- guarding

#[tokio::test]
async fn the_api_key_is_required_and_checked() {
    let mock = MockProvider::new();
    let http = start(
        Server::builder(mock.clone())
            .api_key("sk-gateway")
            .build()
            .unwrap(),
    )
    .await;
    let url = format!("{}/v1/chat/completions", http.base);

    let response = http.chat(&ask("openai/a")).await;
    assert_eq!(header(&response, "www-authenticate"), Some("Bearer"));
    let (status, _, error) = error_of(response).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error["code"], "missing_api_key");

    let wrong = http
        .client
        .post(&url)
        .bearer_auth("sk-gatewaz")
        .json(&ask("openai/a"));
    let (status, _, error) = error_of(wrong.send().await.unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error["code"], "invalid_api_key");
    assert!(!error["message"].as_str().unwrap().contains("sk-"));

    let models = http.get("/v1/models").await;
    assert_eq!(models.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        mock.calls().len(),
        0,
        "refused requests never reach the stack"
    );

    let right = http
        .client
        .post(&url)
        .bearer_auth("sk-gateway")
        .json(&ask("openai/a"));
    assert_eq!(right.send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        http.get("/health").await.status(),
        StatusCode::OK,
        "probes need no key"
    );
}

#[tokio::test]
async fn an_oversized_body_is_a_413_and_the_server_keeps_serving() {
    let mock = MockProvider::new();
    let http = start(
        Server::builder(mock.clone())
            .body_limit(1024)
            .build()
            .unwrap(),
    )
    .await;
    let mut big = ask("openai/a");
    big["messages"][0]["content"] = json!("x".repeat(2048));

    let (status, _, error) = error_of(http.chat(&big).await).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error["code"], "request_too_large");
    assert!(error["message"].as_str().unwrap().contains("1024 bytes"));

    // Without a Content-Length (chunked), the limit holds while reading.
    let bytes = serde_json::to_vec(&big).unwrap();
    let chunked = reqwest::Body::wrap_stream(futures_util::stream::iter(
        bytes
            .chunks(256)
            .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
            .collect::<Vec<_>>(),
    ));
    let response = http
        .client
        .post(format!("{}/v1/chat/completions", http.base))
        .header("content-type", "application/json")
        .body(chunked)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(mock.calls().len(), 0);
    http.still_serves().await;
}

#[tokio::test]
async fn the_default_body_limit_admits_a_3_mib_prompt() {
    // axum's own extractors stop at 2 MiB; the documented default is 4 MiB.
    let mock = MockProvider::new();
    let http = start(Server::builder(mock.clone()).build().unwrap()).await;
    let mut big = ask("openai/a");
    big["messages"][0]["content"] = json!("x".repeat(3 << 20));
    assert_eq!(http.chat(&big).await.status(), StatusCode::OK);
    assert_eq!(server::DEFAULT_BODY_LIMIT, 4 << 20);
}

#[tokio::test]
async fn bad_requests_get_clear_4xx_errors_and_the_server_keeps_serving() {
    let mock = MockProvider::new();
    let http = start(Server::builder(mock.clone()).build().unwrap()).await;
    let url = format!("{}/v1/chat/completions", http.base);
    let raw = |content_type: Option<&str>, body: &str| {
        let mut request = http.client.post(&url).body(body.to_owned());
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        request
    };
    let json = Some("application/json");
    let cases = [
        (
            raw(json, r#"{"model": "openai/a", "messages": ["#),
            400,
            "invalid_json",
            Value::Null,
        ),
        (raw(json, r#"[1, 2]"#), 400, "invalid_json", Value::Null),
        (
            raw(json, r#"{"messages": [{"role": "user", "content": "hi"}]}"#),
            400,
            "missing_required_parameter",
            json!("model"),
        ),
        (
            raw(json, r#"{"model": "openai/a"}"#),
            400,
            "missing_required_parameter",
            json!("messages"),
        ),
        (
            raw(json, r#"{"model": "openai/a", "messages": []}"#),
            400,
            "invalid_type",
            json!("messages"),
        ),
        (
            raw(
                json,
                r#"{"model": 4, "messages": [{"role": "user", "content": "hi"}]}"#,
            ),
            400,
            "invalid_type",
            json!("model"),
        ),
        (
            raw(Some("text/plain"), &ask("openai/a").to_string()),
            415,
            "unsupported_media_type",
            Value::Null,
        ),
        (
            raw(None, &ask("openai/a").to_string()),
            415,
            "unsupported_media_type",
            Value::Null,
        ),
    ];
    for (i, (request, status, code, param)) in cases.into_iter().enumerate() {
        let (got, _, error) = error_of(request.send().await.unwrap()).await;
        assert_eq!(got.as_u16(), status, "case {i}: {error}");
        assert_eq!(error["code"], code, "case {i}");
        assert_eq!(error["param"], param, "case {i}");
        http.still_serves().await;
    }
    let robot = raw(
        json,
        r#"{"model": "openai/a", "messages": [{"role": "robot", "content": "hi"}]}"#,
    );
    let (status, _, error) = error_of(robot.send().await.unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        error["message"].as_str().unwrap().contains("robot"),
        "{error}"
    );
    let charset = raw(
        Some("application/json; charset=utf-8"),
        &ask("openai/a").to_string(),
    );
    assert_eq!(charset.send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        mock.calls().len(),
        9,
        "only the good requests reached the stack"
    );
}

#[tokio::test]
async fn an_unknown_model_is_a_404_without_an_upstream_call() {
    let mock = MockProvider::new();
    let listed = Server::builder(mock.clone())
        .models(["openai/a"])
        .route("smart", ["openai/a"]);
    let http = start(listed.build().unwrap()).await;

    let (status, _, error) = error_of(http.chat(&ask("openai/zzz")).await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error["code"], "model_not_found");
    assert_eq!(error["param"], "model");
    assert!(error["message"].as_str().unwrap().contains("openai/zzz"));
    assert_eq!(mock.calls().len(), 0);
    assert_eq!(http.chat(&ask("smart")).await.status(), StatusCode::OK);

    let open = Server::builder(mock.clone())
        .models(["openai/a"])
        .allow_unlisted_models();
    let http = start(open.build().unwrap()).await;
    assert_eq!(http.chat(&ask("openai/zzz")).await.status(), StatusCode::OK);
    assert_eq!(mock.call_count("openai/zzz"), 1);
}

#[tokio::test]
async fn unknown_urls_and_methods_get_openai_shaped_errors() {
    let http = start(Server::builder(MockProvider::new()).build().unwrap()).await;
    let (status, _, error) = error_of(http.get("/v1/embeddings").await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error["code"], "unknown_url");
    let (status, _, _) = error_of(http.get("/v1/chat/completions").await).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    http.still_serves().await;
}

#[test]
fn invalid_options_are_rejected_at_build_naming_each_problem() {
    let error = Server::builder(MockProvider::new())
        .route("smart", ["gpt-4o", "openai/a"])
        .route("empty", Vec::<String>::new())
        .models(["open ai/a"])
        .api_key("sk secret")
        .body_limit(0)
        .build()
        .unwrap_err();
    let text = error.to_string();
    let paths: Vec<_> = error.problems().iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "routes.smart",
            "routes.empty",
            "models",
            "api_key",
            "body_limit"
        ],
        "{text}"
    );
    assert!(text.contains("\"gpt-4o\""), "{text}");
    assert!(
        !text.contains("sk secret"),
        "the key is never printed: {text}"
    );
}

// ---------------------------------------------------------------- models and health

#[tokio::test]
async fn models_lists_models_and_route_aliases_in_openai_shape() {
    let app = Server::builder(MockProvider::new())
        .models(["openai/gpt-4o-mini", "azure-eu/gpt-4o"])
        .route("smart", ["openai/gpt-4o-mini", "azure-eu/gpt-4o"])
        .build()
        .unwrap();
    let http = start(app).await;

    let body: Value = http.get("/v1/models").await.json().await.unwrap();
    assert_eq!(body["object"], "list");
    let data = body["data"].as_array().unwrap();
    let ids: Vec<_> = data.iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["openai/gpt-4o-mini", "azure-eu/gpt-4o", "smart"]);
    let owners: Vec<_> = data
        .iter()
        .map(|m| m["owned_by"].as_str().unwrap())
        .collect();
    assert_eq!(owners, ["openai", "azure-eu", "llm-fallback"]);
    for model in data {
        assert_eq!(model["object"], "model");
        assert!(model["created"].as_u64().unwrap() > 1_700_000_000);
    }

    let one: Value = http
        .get("/v1/models/azure-eu/gpt-4o")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(one["id"], "azure-eu/gpt-4o");
    let (status, _, error) = error_of(http.get("/v1/models/openai/nope").await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error["code"], "model_not_found");
}

#[derive(Clone, Default)]
struct FakeHealth(Arc<Mutex<HashMap<String, Instant>>>);

impl FakeHealth {
    fn cool(&self, model: &str, for_: Duration) {
        self.0
            .lock()
            .unwrap()
            .insert(model.into(), Instant::now() + for_);
    }

    fn heal(&self, model: &str) {
        self.0.lock().unwrap().remove(model);
    }
}

impl HealthView for FakeHealth {
    fn cooling_until(&self, model: &str) -> Option<Instant> {
        self.0.lock().unwrap().get(model).copied()
    }
}

#[tokio::test]
async fn readiness_follows_the_cooldowns_of_the_route_candidates() {
    let health = FakeHealth::default();
    let app = Server::builder(MockProvider::new())
        .routes([
            ("smart", ["openai/a", "azure/b"]),
            ("cheap", ["openai/a", "openai/a"]),
        ])
        .health(Health::new(health.clone()))
        .build()
        .unwrap();
    let http = start(app).await;
    let ready = || http.get("/health/ready");

    assert_eq!(ready().await.status(), StatusCode::OK);

    health.cool("openai/a", Duration::from_secs(60));
    let response = ready().await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "azure/b still serves `smart`"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["routes"]["smart"]["available"], json!(["azure/b"]));
    assert_eq!(body["routes"]["cheap"]["available"], json!([]));

    health.cool("azure/b", Duration::from_secs(20));
    let response = ready().await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(header(&response, "retry-after"), Some("20"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["routes"]["smart"]["cooling"]["azure/b"], 20);
    let live: Value = http.get("/health").await.json().await.unwrap();
    assert_eq!(
        live["status"], "ok",
        "liveness does not depend on upstreams"
    );

    health.heal("azure/b");
    assert_eq!(ready().await.status(), StatusCode::OK);
}

// ---------------------------------------------------------------- shutdown

/// A stack whose one stream is fed by the test, chunk by chunk.
fn fed_stack() -> (
    impl Service<ChatRequest, Response = ChatResponse, Error = ChatError, Future = impl Send>
        + Clone
        + Send
        + Sync
        + 'static,
    tokio::sync::mpsc::UnboundedSender<ChatChunk>,
) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<ChatChunk>();
    let rx = Arc::new(Mutex::new(Some(rx)));
    let stack = service_fn(move |request: ChatRequest| {
        let rx = rx.lock().unwrap().take().expect("one call");
        async move {
            let chunks = futures_util::stream::unfold(rx, |mut rx| async move {
                rx.recv().await.map(|c| (Ok(c), rx))
            });
            Ok::<_, ChatError>(ChatResponse::stream(
                request.model(),
                ChatStream::new(chunks),
            ))
        }
    });
    (stack, tx)
}

fn word(text: &str) -> ChatChunk {
    serde_json::from_value(json!({"choices": [{"index": 0, "delta": {"content": text}}]})).unwrap()
}

async fn serve_until(
    router: Router,
    grace: Duration,
) -> (
    String,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let signal = async move {
        let _ = stopped.await;
    };
    let task = tokio::spawn(server::serve(listener, router, signal, grace));
    (base, stop, task)
}

#[tokio::test]
async fn shutdown_lets_a_stream_in_flight_finish() {
    let (stack, feed) = fed_stack();
    let (base, stop, server) = serve_until(
        Server::builder(stack).build().unwrap(),
        Duration::from_secs(60),
    )
    .await;
    feed.send(word("one ")).unwrap();
    let mut response = reqwest::Client::new()
        .post(format!("{base}/v1/chat/completions"))
        .json(&ask_stream("openai/a", false))
        .send()
        .await
        .unwrap();
    let first = response.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("one "));

    stop.send(()).unwrap();
    // New connections are refused once shutdown began.
    let addr = base.trim_start_matches("http://");
    waiting::poll_until("new connections are refused", async || {
        tokio::net::TcpStream::connect(addr).await.is_err()
    })
    .await;
    feed.send(word("two")).unwrap();
    drop(feed);
    let mut rest = Vec::new();
    while let Some(bytes) = response.chunk().await.unwrap() {
        rest.extend_from_slice(&bytes);
    }
    let rest = String::from_utf8(rest).unwrap();
    assert!(
        rest.contains("two") && rest.ends_with("data: [DONE]\n\n"),
        "{rest:?}"
    );
    server.await.unwrap();
}

// Real time (a socket): paused time could cut before the first chunk is read.
#[tokio::test]
async fn shutdown_cuts_a_stream_that_outlasts_the_grace() {
    let (stack, feed) = fed_stack();
    let grace = Duration::from_millis(200);
    let (base, stop, server) = serve_until(Server::builder(stack).build().unwrap(), grace).await;
    feed.send(word("one ")).unwrap();
    let mut response = reqwest::Client::new()
        .post(format!("{base}/v1/chat/completions"))
        .json(&ask_stream("openai/a", false))
        .send()
        .await
        .unwrap();
    response.chunk().await.unwrap().unwrap();

    let started = Instant::now();
    stop.send(()).unwrap();
    let mut rest = Vec::new();
    let ended = loop {
        match response.chunk().await {
            Ok(Some(bytes)) => rest.extend_from_slice(&bytes),
            Ok(None) => break "end",
            Err(_) => break "error",
        }
    };
    server.await.unwrap();
    assert_eq!(
        ended, "error",
        "a cut chunked body is an error for the client"
    );
    assert!(!String::from_utf8_lossy(&rest).contains("[DONE]"));
    let elapsed = started.elapsed();
    assert!(
        elapsed >= grace && elapsed < grace + Duration::from_secs(5),
        "cut at the grace bound: {elapsed:?}"
    );
    drop(feed);
}
