//! What the Anthropic client logs: dropped parameters by name; never keys or
//! content. A binary of its own: tracing caches per call site whether anyone
//! listens, so tests running beside it without a subscriber would hide events.
#![cfg(all(feature = "anthropic", feature = "mock"))]

mod log_capture;
use log_capture::LogBuffer;

use llm_fallback::mock::{MockServer, ServerReply};
use llm_fallback::{ChatRequest, Message};
use serde_json::json;
use tower::ServiceExt;

use llm_fallback::providers::anthropic::Anthropic;

const CLAUDE: &str = "claude-3-5-sonnet-20240620";
const KEY: &str = "sk-ant-test-SECRET-0123456789";

fn client(server: &MockServer) -> Anthropic {
    Anthropic::builder()
        .base_url(server.anthropic_base_url())
        .api_key(KEY)
        .build()
        .unwrap()
}

#[tokio::test]
async fn dropped_parameters_are_named_and_keys_and_content_never_logged() {
    let (logs, _guard) = LogBuffer::capture(tracing::Level::TRACE);

    let server = MockServer::start().await;
    server.script(
        CLAUDE,
        [ServerReply::error(
            401,
            "authentication_error",
            &format!("bad key {KEY}"),
        )],
    );
    let request = ChatRequest::new(CLAUDE, [Message::user("my secret diary entry")])
        .with_extra("seed", json!(7))
        .with_extra("response_format", json!({"type": "json_object"}));
    let claude = client(&server);
    claude.clone().oneshot(request.clone()).await.unwrap_err();
    claude.oneshot(request.with_stream(true)).await.unwrap();

    let text = logs.text();
    for parameter in ["seed", "response_format"] {
        assert!(
            text.lines().any(|l| l.contains("DEBUG")
                && l.contains("no equivalent")
                && l.contains(&format!("parameter=\"{parameter}\""))),
            "{parameter} named in:\n{text}"
        );
    }
    assert!(text.contains("provider failed"), "{text}");
    assert!(!text.contains(KEY), "{text}");
    assert!(!text.contains("secret diary"), "{text}");
}
