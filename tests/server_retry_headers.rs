//! What the gateway tells clients about retrying: `x-should-retry: false`
//! on what it already retried, and `Retry-After` (at least 1 s) on every
//! cooling or rate-limited 429 and 503. Real sockets, a real HTTP client.
#![cfg(all(feature = "server", feature = "mock"))]

use std::time::Duration;

use llm_fallback::chat::Attempt;
use llm_fallback::server::{Server, SHOULD_RETRY_HEADER};
use llm_fallback::{ChatError, ChatRequest, ChatResponse, ErrorKind};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::time::Instant;
use tower::service_fn;

/// The error the stack answers for `model`.
fn error_for(model: &str) -> ChatError {
    let in_secs = |s: u64| Instant::now() + Duration::from_secs(s);
    match model {
        "p/server" => ChatError::new(ErrorKind::Server, "overloaded"),
        "p/timeout" => ChatError::new(ErrorKind::Timeout, "too slow"),
        "p/limited" => ChatError::new(ErrorKind::RateLimited, "slow down")
            .with_retry_after(Duration::from_millis(300)),
        "p/limited-now" => {
            ChatError::new(ErrorKind::RateLimited, "slow down").with_retry_after(Duration::ZERO)
        }
        "p/cooling" => ChatError::cooling_down("p/cooling", Instant::now()),
        "route/all-cooling" => {
            let a = ChatError::cooling_down("p/a", in_secs(20));
            let b = ChatError::cooling_down("p/b", in_secs(5));
            let attempts = vec![
                Attempt::failure("p/a", &a, Duration::ZERO),
                Attempt::failure("p/b", &b, Duration::ZERO),
            ];
            ChatError::all_failed(b, attempts)
        }
        "p/bad" => ChatError::new(ErrorKind::BadRequest, "temperature too high"),
        "p/missing" => ChatError::new(ErrorKind::NotFound, "no such model"),
        _ => ChatError::new(ErrorKind::ContentFilter, "filtered"),
    }
}

async fn start() -> String {
    let stack = service_fn(|request: ChatRequest| async move {
        Err::<ChatResponse, _>(error_for(request.model()))
    });
    let router = Server::builder(stack).build().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}/v1/chat/completions")
}

/// Status, `x-should-retry`, `Retry-After` and the error's code.
async fn ask(url: &str, model: &str) -> (u16, Option<String>, Option<String>, Value) {
    let body = json!({"model": model, "messages": [{"role": "user", "content": "hi"}]});
    let response = reqwest::Client::new()
        .post(url)
        .json(&body)
        .send()
        .await
        .unwrap();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let (should_retry, retry_after) = (header(SHOULD_RETRY_HEADER), header("retry-after"));
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    (
        status,
        should_retry,
        retry_after,
        body["error"]["code"].clone(),
    )
}

#[tokio::test]
async fn errors_the_gateway_already_retried_tell_clients_not_to_retry() {
    let url = start().await;
    let no = Some("false".to_owned());
    for (model, status) in [
        ("p/server", 502),
        ("p/timeout", 504),
        ("p/cooling", 503),
        ("p/limited", 429),
        ("route/all-cooling", 503),
    ] {
        let (got, should_retry, _, _) = ask(&url, model).await;
        assert_eq!(got, status, "{model}");
        assert_eq!(
            should_retry, no,
            "{model}: {status} after the gateway's own retries"
        );
    }
    for (model, status) in [("p/bad", 400), ("p/missing", 404), ("p/filtered", 400)] {
        let (got, should_retry, _, _) = ask(&url, model).await;
        assert_eq!(got, status, "{model}");
        assert_eq!(
            should_retry, None,
            "{model}: the caller's own problem, not ours to judge"
        );
    }
}

#[tokio::test]
async fn every_cooling_or_limited_answer_says_when_to_come_back() {
    let url = start().await;
    let secs = |s: &str| Some(s.to_owned());
    let (_, _, retry_after, _) = ask(&url, "p/limited").await;
    assert_eq!(retry_after, secs("1"), "300 ms rounds up");
    let (_, _, retry_after, _) = ask(&url, "p/limited-now").await;
    assert_eq!(retry_after, secs("1"), "never 0: clients would hammer");
    let (_, _, retry_after, _) = ask(&url, "p/cooling").await;
    assert_eq!(retry_after, secs("1"), "a breaker about to reopen");
    let (status, _, retry_after, code) = ask(&url, "route/all-cooling").await;
    assert_eq!(status, 503, "every candidate skipped as cooling: not a 502");
    assert_eq!(code, "cooling_down");
    assert_eq!(retry_after, secs("5"), "the error's recovery time");
}
