//! A call the mock server received.

use std::fmt;

use bytes::Bytes;
use http::HeaderMap;
use serde_json::Value;
use tokio::time::Instant;

use crate::chat::Message;

/// Headers whose values [`ServerCall`]'s `Debug` never prints.
const SECRET_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "api-key",
    "x-api-key",
    "cookie",
];

/// One request the [`MockServer`](super::MockServer) received, as it arrived.
#[derive(Clone)]
pub struct ServerCall {
    /// The model: the body's `model`, or the deployment of an Azure path.
    pub model: String,
    /// When the request (head and body) had arrived, in tokio time.
    pub at: Instant,
    /// The messages, in the order sent. For a call to Anthropic's
    /// `/v1/messages`: the system prompt as a system message, then each
    /// turn's text (the exact request is in [`body`](Self::body)).
    pub messages: Vec<Message>,
    /// Whether a stream was asked for.
    pub stream: bool,
    /// The whole JSON body, unknown fields included.
    pub body: Value,
    /// The body's bytes, exactly as they arrived.
    pub raw_body: Bytes,
    /// The request headers. `Debug` redacts credentials.
    pub headers: HeaderMap,
    /// The path and query, e.g.
    /// `/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21`.
    pub path: String,
}

impl ServerCall {
    /// A header's value, if present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The API key presented: `Authorization: Bearer <key>`, `api-key` or
    /// `x-api-key`, in that order.
    pub fn api_key(&self) -> Option<&str> {
        self.header("authorization")
            .and_then(|v| v.strip_prefix("Bearer "))
            .or_else(|| self.header("api-key"))
            .or_else(|| self.header("x-api-key"))
    }

    /// A query parameter's value (e.g. `api-version`), as written.
    pub fn query(&self, name: &str) -> Option<&str> {
        let (_, query) = self.path.split_once('?')?;
        query.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k == name).then_some(v)
        })
    }

    /// The text of every message, in order.
    pub fn texts(&self) -> Vec<String> {
        self.messages.iter().map(Message::text).collect()
    }
}

impl fmt::Debug for ServerCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(name, value)| {
                let value = if SECRET_HEADERS.contains(&name.as_str()) {
                    "****"
                } else {
                    value.to_str().unwrap_or("<binary>")
                };
                (name.as_str(), value)
            })
            .collect();
        f.debug_struct("ServerCall")
            .field("model", &self.model)
            .field("at", &self.at)
            .field("messages", &self.messages.len())
            .field("stream", &self.stream)
            .field("path", &self.path)
            .field("headers", &headers)
            .finish_non_exhaustive()
    }
}
