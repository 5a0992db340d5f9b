//! A `Retry-After` no one should honour (`1e20` seconds, `1e300` ms) is
//! clamped, never a panic: not in the client, not in the layers, not in the
//! gateway's own `Retry-After`.

use std::time::Duration;

use axum::body::Body;
use http::Request;
use llm_fallback::mock::{MockProvider, MockReply, MockServer, ServerReply};
use llm_fallback::providers::http_error::MAX_RETRY_AFTER;
use llm_fallback::providers::openai::OpenAi;
use llm_fallback::server::Server;
use llm_fallback::{ChatRequest, ErrorKind, Message};
use tokio::time::Instant;
use tower::ServiceExt;

use super::support::{call, stack};

#[tokio::test]
async fn the_server_caps_a_service_retry_after_of_duration_max() {
    let mock = MockProvider::new();
    mock.always(
        "m",
        MockReply::error(ErrorKind::RateLimited).with_retry_after(Duration::MAX),
    );
    let router = Server::builder(mock).build().unwrap();
    let request = Request::post("/v1/chat/completions")
        .header("content-type", "application/json")
        .body(Body::from(
            r#"{"model": "m", "messages": [{"role": "user", "content": "hi"}]}"#,
        ))
        .unwrap();
    let response = router.oneshot(request).await.unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(
        response.headers()["retry-after"],
        MAX_RETRY_AFTER.as_secs().to_string()
    );
}

fn huge_429() -> ServerReply {
    ServerReply::error(429, "rate_limit_exceeded", "slow down").with_huge_retry_after()
}

#[tokio::test]
async fn the_client_clamps_a_huge_retry_after_instead_of_panicking() {
    let server = MockServer::start().await;
    server.always("gpt-4o", huge_429());
    server.script(
        "seconds-only",
        [ServerReply::error(429, "rate_limit_exceeded", "x").with_header("retry-after", "1e20")],
    );
    let client = OpenAi::builder()
        .base_url(server.base_url())
        .api_key("k")
        .build()
        .unwrap();
    for model in ["gpt-4o", "seconds-only"] {
        let request = ChatRequest::new(model, [Message::user("hi")]);
        let e = client.clone().oneshot(request).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::RateLimited, "{model}");
        assert_eq!(e.retry_after(), Some(MAX_RETRY_AFTER), "{model}");
    }
    assert_eq!(server.calls().len(), 2);
}

#[tokio::test]
async fn a_stack_falls_back_past_a_huge_retry_after_and_the_gateway_caps_its_own() {
    let server = MockServer::start().await;
    server.always("limited", huge_429());
    let stack = stack(
        &server,
        r#"
        [routes]
        chat = ["a/limited", "b/fine"]
        only = ["b/limited"]
        "#,
    );

    // Not worth waiting for (retry caps at 10 s): straight to the fallback.
    let served = call(&stack, "chat").await.unwrap();
    assert_eq!(served.model(), "b/fine");
    assert_eq!(server.call_count("limited"), 1);
    // The breaker of `a/limited` is open, for at most its own cap.
    let until = stack.health().cooling_until("a/limited").unwrap();
    assert!(until > Instant::now() && until <= Instant::now() + Duration::from_secs(601));

    let router = stack.server().build().unwrap();
    let request = Request::post("/v1/chat/completions")
        .header("content-type", "application/json")
        .body(Body::from(
            r#"{"model": "only", "messages": [{"role": "user", "content": "hi"}]}"#,
        ))
        .unwrap();
    let response = router.oneshot(request).await.unwrap();
    assert_eq!(response.status(), 429);
    let after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        Duration::from_secs(after) <= MAX_RETRY_AFTER,
        "Retry-After {after} s"
    );
}
