//! Keys never reach the logs: every client event at TRACE level is captured
//! (a test binary of its own, so no other test's subscriber interferes).

mod log_capture;
use log_capture::LogBuffer;

use llm_fallback::mock::{MockServer, ServerReply};
use llm_fallback::providers::openai::{Azure, OpenAi};
use llm_fallback::{ChatRequest, Message};
use tower::ServiceExt;

const KEY: &str = "sk-test-SECRET-0123456789";

fn request() -> ChatRequest {
    ChatRequest::new("gpt-4o-mini", [Message::user("hi")])
}

#[tokio::test]
async fn the_key_never_shows_in_logs() {
    let (logs, _guard) = LogBuffer::capture(tracing::Level::TRACE);

    let server = MockServer::start().await;
    server.script(
        "gpt-4o-mini",
        [
            ServerReply::status(401),
            ServerReply::text("a b").malformed_after(1),
        ],
    );
    server.always(
        "gpt-4o",
        ServerReply::error(401, "invalid_api_key", &format!("bad key {KEY}")),
    );
    let openai = OpenAi::builder()
        .base_url(server.base_url())
        .api_key(KEY)
        .build()
        .unwrap();
    let azure = Azure::builder()
        .endpoint(server.endpoint())
        .api_key(KEY)
        .build()
        .unwrap();
    openai.clone().oneshot(request()).await.unwrap_err();
    let response = openai.oneshot(request().with_stream(true)).await.unwrap();
    // A malformed event after content is a fault, never skipped.
    response
        .into_stream()
        .unwrap()
        .collect_completion()
        .await
        .unwrap_err();
    azure
        .oneshot(request().with_model("gpt-4o"))
        .await
        .unwrap_err();

    let logs = logs.text();
    assert!(
        logs.contains("provider failed") && logs.contains("malformed"),
        "{logs}"
    );
    assert!(!logs.contains(KEY), "key leaked in logs: {logs}");
}
