//! The mock provider server on its own, driven by a plain HTTP client: what
//! users of it for their own tests rely on.

mod anthropic;
mod faults;
mod replies;

#[path = "../waiting/mod.rs"]
mod waiting;

use std::time::Duration;

use llm_fallback::mock::{MockServer, ServerReply};
use serde_json::{json, Value};
use tokio::time::Instant;

pub(crate) async fn post(url: &str, body: Value) -> (u16, String, String) {
    let response = reqwest::Client::new()
        .post(url)
        .header("authorization", "Bearer sk-very-secret")
        .header("api-key", "azure-very-secret")
        .header("x-request-tag", "visible-tag")
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, content_type, response.text().await.unwrap())
}

pub(crate) fn chat(model: &str, stream: bool) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hi there"}], "stream": stream})
}

pub(crate) fn completions(server: &MockServer) -> String {
    format!("{}/chat/completions", server.base_url())
}

pub(crate) fn messages(server: &MockServer) -> String {
    format!("{}/v1/messages", server.anthropic_base_url())
}
