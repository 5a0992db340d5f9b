//! What the Anthropic client logs: dropped parameters by name; never keys or
//! content. A binary of its own: tracing caches per call site whether anyone
//! listens, so tests running beside it without a subscriber would hide events.
#![cfg(all(feature = "anthropic", feature = "mock"))]

use std::sync::{Arc, Mutex};

use llm_fallback::mock::{MockServer, ServerReply};
use llm_fallback::{ChatRequest, Message};
use serde_json::json;
use tower::ServiceExt;

use llm_fallback::anthropic::Anthropic;

const CLAUDE: &str = "claude-3-5-sonnet-20240620";
const KEY: &str = "sk-ant-test-SECRET-0123456789";

fn client(server: &MockServer) -> Anthropic {
    Anthropic::builder()
        .base_url(server.anthropic_base_url())
        .api_key(KEY)
        .build()
        .unwrap()
}

#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn dropped_parameters_are_named_and_keys_and_content_never_logged() {
    let logs = LogBuffer::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // Thread-local, and each test runs on its own thread.
    let _guard = tracing::subscriber::set_default(subscriber);

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

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
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
