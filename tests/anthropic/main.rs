//! The Anthropic client against the mock provider server over real sockets
//! on 127.0.0.1: request and response translation, streams, errors, and a
//! fallback from an OpenAI-compatible provider to Anthropic.
#![cfg(all(feature = "anthropic", feature = "mock"))]

mod errors;
mod fallback;
mod faults;
mod request;
mod response;
mod streaming;

use llm_fallback::mock::{MockServer, ServerReply};
use llm_fallback::providers::anthropic::Anthropic;
use llm_fallback::{ChatError, ChatRequest, ChatResponse, Message};
use serde_json::Value;
use tower::ServiceExt;

pub(crate) const CLAUDE: &str = "claude-3-5-sonnet-20240620";
pub(crate) const KEY: &str = "sk-ant-test-SECRET-0123456789";

pub(crate) fn client(server: &MockServer) -> Anthropic {
    Anthropic::builder()
        .base_url(server.anthropic_base_url())
        .api_key(KEY)
        .build()
        .unwrap()
}

/// A request from OpenAI-shaped JSON.
pub(crate) fn from_json(json: Value) -> ChatRequest {
    ChatRequest::from_json(json.to_string().as_bytes()).expect("a valid chat request")
}

pub(crate) fn hello() -> ChatRequest {
    ChatRequest::new(CLAUDE, [Message::user("say hello to the world")])
}

/// One call of `request` answered by `reply`; the client never retries.
pub(crate) async fn call_with(
    reply: ServerReply,
    request: ChatRequest,
) -> (MockServer, Result<ChatResponse, ChatError>) {
    let server = MockServer::start().await;
    server.always(CLAUDE, reply);
    let result = client(&server).oneshot(request).await;
    assert!(server.call_count(CLAUDE) <= 1, "the client never retries");
    (server, result)
}
