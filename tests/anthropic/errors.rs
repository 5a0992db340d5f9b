//! Every failure mapped to its kind; requests that cannot be translated never
//! reach the provider; configuration problems are caught at build time.

use std::time::Duration;

use llm_fallback::mock::{MockServer, ServerReply};
use llm_fallback::providers::anthropic::{Anthropic, ANTHROPIC_VERSION, DEFAULT_MAX_TOKENS};
use llm_fallback::{ChatError, ChatRequest, ErrorKind, Message};
use serde_json::json;
use tower::ServiceExt;

use crate::{call_with, client, from_json, hello, CLAUDE, KEY};

async fn fail_with(reply: ServerReply) -> ChatError {
    let (server, result) = call_with(reply, hello()).await;
    assert_eq!(server.call_count(CLAUDE), 1);
    result.unwrap_err()
}

#[tokio::test]
async fn every_error_status_and_type_maps_to_its_kind() {
    let table = [
        (
            ServerReply::status(429),
            ErrorKind::RateLimited,
            "rate_limit_error",
        ),
        (
            ServerReply::status(529),
            ErrorKind::Server,
            "overloaded_error",
        ),
        (ServerReply::status(500), ErrorKind::Server, "api_error"),
        (ServerReply::status(503), ErrorKind::Server, "api_error"),
        (
            ServerReply::status(401),
            ErrorKind::Auth,
            "authentication_error",
        ),
        (
            ServerReply::status(403),
            ErrorKind::Auth,
            "permission_error",
        ),
        (
            ServerReply::status(404),
            ErrorKind::NotFound,
            "not_found_error",
        ),
        (
            ServerReply::status(413),
            ErrorKind::BadRequest,
            "request_too_large",
        ),
        (
            ServerReply::error(
                400,
                "invalid_request_error",
                "prompt is too long: 210000 tokens > 200000 maximum",
            ),
            ErrorKind::ContextWindowExceeded,
            "invalid_request_error",
        ),
        (
            ServerReply::error(
                400,
                "invalid_request_error",
                "input length and `max_tokens` exceed context limit: 198000 + 4096 > 200000",
            ),
            ErrorKind::ContextWindowExceeded,
            "invalid_request_error",
        ),
        (
            ServerReply::error(
                400,
                "invalid_request_error",
                "messages: roles must alternate",
            ),
            ErrorKind::BadRequest,
            "invalid_request_error",
        ),
    ];
    for (reply, kind, code) in table {
        let e = fail_with(reply).await;
        assert_eq!(e.kind(), kind, "{e}");
        assert_eq!(e.code(), Some(code), "{e}");
        assert_eq!(e.model(), Some(CLAUDE));
        assert!(e.status().is_some());
    }
}

#[tokio::test]
async fn a_rate_limit_carries_retry_after() {
    let e = fail_with(ServerReply::status(429).with_retry_after(Duration::from_secs(7))).await;
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
    assert_eq!(e.status().map(|s| s.as_u16()), Some(429));
}

#[tokio::test]
async fn connection_failures_are_connect_errors() {
    let e = fail_with(ServerReply::reset()).await;
    assert_eq!(e.kind(), ErrorKind::Connect);

    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let claude = Anthropic::builder()
        .base_url(format!("http://127.0.0.1:{port}"))
        .build()
        .unwrap();
    let e = claude.oneshot(hello()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Connect);
    assert_eq!(e.model(), Some(CLAUDE));
}

#[tokio::test]
async fn requests_that_cannot_be_translated_are_bad_requests_never_sent() {
    let call = |arguments: &str| {
        json!({"role": "assistant", "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": arguments}}]})
    };
    let user = json!({"role": "user", "content": "hi"});
    let table = [
        (
            json!({"messages": [user, call("{not json")]}),
            "not valid JSON",
        ),
        (
            json!({"messages": [user, call("[1, 2]")]}),
            "not a JSON object",
        ),
        (
            json!({"messages": [user, {"role": "tool", "content": "x"}]}),
            "tool_call_id",
        ),
        (
            json!({"messages": [user, {"role": "function", "name": "f", "content": "x"}]}),
            "function",
        ),
        (
            json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x/cat.png"}}]}]}),
            "http(s) or a base64 data: URL",
        ),
        (
            json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png,raw"}}]}]}),
            "base64-encoded",
        ),
        (
            json!({"messages": [user], "max_tokens": 0}),
            "max_tokens must be a positive integer",
        ),
        (
            json!({"messages": [user], "max_completion_tokens": "lots"}),
            "max_completion_tokens must be",
        ),
        (
            json!({"messages": [user], "tool_choice": "sometimes"}),
            "no Anthropic equivalent",
        ),
        (json!({"messages": [user], "stop": 42}), "stop must be"),
        (
            json!({"messages": [user], "tools": [{"type": "function", "function": {}}]}),
            "needs a name",
        ),
    ];
    let server = MockServer::start().await;
    for (mut openai, reason) in table {
        openai["model"] = json!(CLAUDE);
        let e = client(&server)
            .oneshot(from_json(openai))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::BadRequest, "{reason}: {e}");
        assert!(e.message().contains(reason), "{reason}: {e}");
        assert_eq!(e.model(), Some(CLAUDE));
    }
    assert!(server.calls().is_empty(), "nothing was sent");
}

#[tokio::test]
async fn the_key_never_shows_in_debug_or_errors() {
    let echo = ServerReply::error(
        401,
        "authentication_error",
        &format!("invalid x-api-key {KEY}"),
    );
    let (server, result) = call_with(echo, hello()).await;
    let e = result.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth);
    assert!(e.message().contains("****"), "{e}");
    for text in [
        e.to_string(),
        format!("{e:?}"),
        format!("{:?}", client(&server)),
        format!("{:?}", Anthropic::builder().api_key(KEY)),
        format!("{:?}", server.calls()[0]),
    ] {
        assert!(!text.contains(KEY), "{text}");
    }
}

#[tokio::test]
async fn invalid_configuration_is_rejected_at_build_time() {
    let e = Anthropic::builder()
        .base_url("ftp://api.anthropic.com")
        .api_key("  ")
        .version("2023 06 01")
        .default_max_tokens(0)
        .header("bad header", "x")
        .build()
        .unwrap_err();
    let paths: Vec<&str> = e.problems().iter().map(|p| p.path.as_str()).collect();
    for path in [
        "base_url",
        "api_key",
        "version",
        "default_max_tokens",
        "headers.bad header",
    ] {
        assert!(paths.contains(&path), "{path} in {paths:?}");
    }

    let claude = Anthropic::builder().build().unwrap();
    assert_eq!(
        claude.url().as_str(),
        "https://api.anthropic.com/v1/messages"
    );
    assert_eq!(claude.version(), ANTHROPIC_VERSION);
    assert_eq!(claude.default_max_tokens(), DEFAULT_MAX_TOKENS);
}

#[tokio::test]
async fn a_request_without_messages_is_left_for_anthropic_to_judge() {
    let server = MockServer::start().await;
    server.always(
        CLAUDE,
        ServerReply::error(
            400,
            "invalid_request_error",
            "messages: at least one message is required",
        ),
    );
    let request = ChatRequest::new(CLAUDE, [Message::system("only a system prompt")]);
    let e = client(&server).oneshot(request).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BadRequest);
    assert_eq!(server.calls()[0].body["messages"], json!([]));
}
