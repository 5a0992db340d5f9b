//! The OpenAI and Azure clients against the mock provider server, over real
//! sockets on 127.0.0.1: request shape, failure classification, secrets.

mod errors;
mod faults;
mod requests;
mod setup;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use llm_fallback::chat::Role;
use llm_fallback::mock::{MockServer, ServerReply};
use llm_fallback::providers::openai::{Azure, OpenAi, AZURE_API_VERSION};
use llm_fallback::{ChatError, ChatRequest, ChatResponse, ErrorKind, Message, Providers};
use serde_json::json;
use tower::ServiceExt;

pub(crate) const KEY: &str = "sk-test-SECRET-0123456789";

pub(crate) fn client(server: &MockServer) -> OpenAi {
    OpenAi::builder()
        .base_url(server.base_url())
        .api_key(KEY)
        .build()
        .unwrap()
}

pub(crate) fn request(model: &str) -> ChatRequest {
    ChatRequest::new(model, [Message::user("say hello to the world")])
}

pub(crate) async fn fail_with(reply: ServerReply) -> ChatError {
    let server = MockServer::start().await;
    server.always("gpt-4o-mini", reply);
    let e = client(&server)
        .oneshot(request("gpt-4o-mini"))
        .await
        .unwrap_err();
    assert_eq!(
        server.call_count("gpt-4o-mini"),
        1,
        "the client never retries"
    );
    e
}
