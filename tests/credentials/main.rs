//! Credential rotation against the mock provider server over real sockets,
//! with the real OpenAI, Azure and Anthropic clients: a key's own failures
//! cool it alone and move the request to the next key, then tier, then
//! provider. Real time: see `waiting` on paused time and sockets.
#![cfg(all(feature = "openai", feature = "anthropic", feature = "mock"))]

mod config;
mod fallback;
mod providers;
mod rotation;
#[path = "../waiting/mod.rs"]
mod waiting;

use llm_fallback::mock::{MockServer, ServerReply};
use llm_fallback::providers::credentials::{Credentials, CredentialsBuilder, Key};
use llm_fallback::providers::openai::OpenAi;
use llm_fallback::{ChatRequest, ErrorKind, Message};

pub(crate) const MODEL: &str = "gpt-4o-mini";
pub(crate) const ID: &str = "openai/gpt-4o-mini";
pub(crate) const KEY_A: &str = "sk-test-A-SECRET-0001";
pub(crate) const KEY_B: &str = "sk-test-B-SECRET-0002";
pub(crate) const KEY_C: &str = "sk-test-C-SECRET-0003";

pub(crate) fn openai(server: &MockServer, key: &str) -> OpenAi {
    OpenAi::builder()
        .base_url(server.base_url())
        .api_key(key)
        .build()
        .unwrap()
}

/// Keys `a`, `b`, `c` of tiers `tiers`, in turn within a tier.
pub(crate) fn abc(server: &MockServer, tiers: [u32; 3]) -> CredentialsBuilder<OpenAi> {
    Credentials::builder("openai")
        .key(Key::new("a", openai(server, KEY_A)).tier(tiers[0]))
        .key(Key::new("b", openai(server, KEY_B)).tier(tiers[1]))
        .key(Key::new("c", openai(server, KEY_C)).tier(tiers[2]))
        .round_robin()
}

/// Key A rate-limited, key B revoked, key C healthy (the default answer).
pub(crate) fn script_abc(server: &MockServer, model: &str) {
    server.always_for_key(
        model,
        KEY_A,
        ServerReply::error(429, "rate_limit_exceeded", "Rate limit reached"),
    );
    server.always_for_key(
        model,
        KEY_B,
        ServerReply::error(401, "invalid_api_key", "Incorrect API key provided"),
    );
}

pub(crate) fn request(model: &str) -> ChatRequest {
    ChatRequest::new(model, [Message::user("hello")])
}

/// The key presented by each call the server received, in order.
pub(crate) fn keys_called(server: &MockServer) -> Vec<String> {
    (server.calls().iter())
        .map(|c| c.api_key().unwrap_or("<none>").to_owned())
        .collect()
}

/// Each attempt as (model, key label, error kind).
pub(crate) fn attempts(
    attempts: &[llm_fallback::chat::Attempt],
) -> Vec<(String, Option<String>, Option<ErrorKind>)> {
    (attempts.iter())
        .map(|a| (a.model.clone(), a.key.clone(), a.error))
        .collect()
}

pub(crate) fn entry(
    model: &str,
    key: Option<&str>,
    error: Option<ErrorKind>,
) -> (String, Option<String>, Option<ErrorKind>) {
    (model.to_owned(), key.map(str::to_owned), error)
}
