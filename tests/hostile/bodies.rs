//! Response bodies: read with a limit (a body that never ends is an error,
//! not a hang or unbounded memory), never shorter than promised, and never
//! JSON that answers nothing passed off as an (empty) answer. Each failure
//! is a `Server` or `Connect` error, so fallback applies.

use std::time::Duration;

use llm_fallback::mock::{MockServer, ServerReply};
use llm_fallback::providers::anthropic::Anthropic;
use llm_fallback::providers::http_error::MAX_COMPLETION_BYTES;
use llm_fallback::providers::openai::OpenAi;
use llm_fallback::{ChatError, ChatRequest, ChatResponse, ErrorKind, Message};
use tower::ServiceExt;

use super::support::{call, stack, PLAIN};

/// A guard, not a wait: on a broken client these calls would never end.
const GUARD: Duration = Duration::from_secs(120);

async fn openai(server: &MockServer, model: &str) -> Result<ChatResponse, ChatError> {
    let client = OpenAi::builder()
        .base_url(server.base_url())
        .api_key("k")
        .build()
        .unwrap();
    let request = ChatRequest::new(model, [Message::user("hi")]);
    tokio::time::timeout(GUARD, client.oneshot(request))
        .await
        .expect("the call ends by itself")
}

fn route(server: &MockServer) -> llm_fallback::Stack {
    stack(
        server,
        &format!("{PLAIN}\n[routes]\nchat = [\"a/bad\", \"b/fine\"]\n"),
    )
}

async fn falls_back(server: &MockServer, bad: ServerReply) {
    server.clear_calls();
    server.always("bad", bad);
    let stack = route(server);
    let served = tokio::time::timeout(GUARD, call(&stack, "chat"))
        .await
        .expect("the call ends by itself")
        .unwrap();
    assert_eq!(served.model(), "b/fine");
    assert_eq!(served.text().as_deref(), Some("ok from fine"));
    assert_eq!(server.called_models(), ["bad", "fine"]);
    let first = &served.attempts()[0];
    assert_eq!(first.model, "a/bad");
    assert!(first.error.is_some());
}

#[tokio::test]
async fn a_complete_body_that_never_ends_fails_at_the_limit() {
    let server = MockServer::start().await;
    server.always("endless", ServerReply::text("hello").endless());
    let e = openai(&server, "endless").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Server);
    let limit = format!("{} MiB", MAX_COMPLETION_BYTES >> 20);
    assert!(e.message().contains(&limit), "{e}");
}

#[tokio::test]
async fn a_complete_body_that_never_ends_falls_back() {
    let server = MockServer::start().await;
    falls_back(&server, ServerReply::text("hello").endless()).await;
}

#[tokio::test]
async fn an_error_body_that_never_ends_is_classified_by_what_was_read() {
    let server = MockServer::start().await;
    server.always(
        "picky",
        ServerReply::error(400, "context_length_exceeded", "too long").endless(),
    );
    server.always("down", ServerReply::status(503).endless());
    let e = openai(&server, "picky").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ContextWindowExceeded);
    assert_eq!(e.message(), "too long");
    let e = openai(&server, "down").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Server);
    assert_eq!(e.status().map(|s| s.as_u16()), Some(503));
}

#[tokio::test]
async fn a_body_shorter_than_its_content_length_is_an_error_not_an_answer() {
    let server = MockServer::start().await;
    // The JSON sent is a whole, valid completion: only the length says the
    // body is cut.
    server.always("short", ServerReply::text("complete?").short_by(100));
    let e = openai(&server, "short").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Connect, "{e}");
    falls_back(&server, ServerReply::text("complete?").short_by(100)).await;
}

#[tokio::test]
async fn json_that_is_not_a_completion_is_a_server_error() {
    let server = MockServer::start().await;
    let bodies = [
        "{}",
        r#"{"choices": []}"#,
        r#"{"choices": [{"index": 0, "finish_reason": "stop"}]}"#,
        r#"{"choices": [{"index": 0, "message": {"role": "assistant"}}]}"#,
        r#"{"object": "chat.completion", "choices": null}"#,
    ];
    for (i, body) in bodies.iter().enumerate() {
        let model = format!("m{i}");
        server.always(&model, ServerReply::raw(200, "application/json", *body));
        let e = openai(&server, &model).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Server, "{body}");
        assert!(
            e.message().contains("malformed response body"),
            "{body}: {e}"
        );
    }
}

#[tokio::test]
async fn a_completion_without_choices_falls_back() {
    let server = MockServer::start().await;
    falls_back(
        &server,
        ServerReply::raw(200, "application/json", r#"{"id": "x", "choices": []}"#),
    )
    .await;
}

#[tokio::test]
async fn an_anthropic_body_that_is_not_a_message_is_a_server_error() {
    let server = MockServer::start().await;
    server.always(
        "claude-x",
        ServerReply::raw(200, "application/json", r#"{"content": []}"#),
    );
    let client = Anthropic::builder()
        .base_url(server.anthropic_base_url())
        .api_key("k")
        .build()
        .unwrap();
    let request = ChatRequest::new("claude-x", [Message::user("hi")]);
    let e = client.oneshot(request).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Server);
}
