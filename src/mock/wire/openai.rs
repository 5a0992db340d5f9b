//! The OpenAI (and Azure) chat-completions wire format, server side.

use http::request::Parts;
use http::{Response, StatusCode};
use serde_json::{json, Value};
use tokio::time::Instant;

use super::{
    event, json_response, path_and_query, token_counts, wrong_method, Body, Frames, Step, CREATED,
};
use crate::mock::call::ServerCall;
use crate::mock::reply::StreamShape;
use crate::ChatRequest;

/// Reads a chat-completions call (OpenAI path, or Azure's deployment path).
#[allow(clippy::result_large_err)]
pub(super) fn parse(parts: &Parts, body: &[u8]) -> Result<ServerCall, Response<Body>> {
    let path = parts.uri.path();
    let deployment = path
        .strip_prefix("/openai/deployments/")
        .and_then(|rest| rest.strip_suffix("/chat/completions"))
        .map(percent_decode);
    if deployment.is_none() && !path.ends_with("/chat/completions") {
        let message = format!("mock server: no route for {} {path}", parts.method);
        return Err(error_response(StatusCode::NOT_FOUND, "not_found", &message));
    }
    if let Some(message) = wrong_method(parts) {
        return Err(error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            &message,
        ));
    }
    let invalid = |e: serde_json::Error| {
        let message = format!("mock server: the body is not a chat request: {e}");
        error_response(StatusCode::BAD_REQUEST, "invalid_request_error", &message)
    };
    let value: Value = serde_json::from_slice(body).map_err(invalid)?;
    let request = ChatRequest::from_json(body).map_err(invalid)?;
    Ok(ServerCall {
        model: deployment.unwrap_or_else(|| request.model().to_owned()),
        at: Instant::now(),
        messages: request.all_messages().cloned().collect(),
        stream: request.is_stream(),
        body: value,
        raw_body: bytes::Bytes::copy_from_slice(body),
        headers: parts.headers.clone(),
        path: path_and_query(parts),
    })
}

/// An OpenAI-shaped error response.
fn error_response(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    let body =
        json!({"error": {"message": message, "type": "invalid_request_error", "code": code}});
    json_response(status, body.to_string())
}

/// Frames answers as `chat.completion` and `chat.completion.chunk` objects.
pub(super) struct OpenAiFrames<'a>(
    pub(super) &'a ServerCall,
    /// Fields set in every object (the reply's `with_fields`).
    pub(super) &'a serde_json::Map<String, Value>,
);

impl OpenAiFrames<'_> {
    /// `object` with the reply's own fields set.
    fn stamped(&self, mut object: Value) -> Value {
        if let Value::Object(fields) = &mut object {
            for (k, v) in self.1 {
                fields.insert(k.clone(), v.clone());
            }
        }
        object
    }

    fn usage(&self, text: &str) -> Value {
        let (prompt, completion) = token_counts(text, self.0);
        json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion})
    }

    fn chunk(&self, delta: Value, finish: Value) -> Step {
        event(None, &self.chunk_json(0, delta, finish))
    }

    fn chunk_json(&self, index: u32, delta: Value, finish: Value) -> String {
        self.stamped(json!({
            "id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": CREATED, "model": self.0.model,
            "choices": [{"index": index, "delta": delta, "finish_reason": finish}],
        }))
        .to_string()
    }
}

impl Frames for OpenAiFrames<'_> {
    fn completion(&self, text: &str, finish: Option<&str>) -> String {
        self.stamped(json!({
            "id": "chatcmpl-mock", "object": "chat.completion", "created": CREATED, "model": self.0.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                "finish_reason": finish.unwrap_or("stop")}],
            "usage": self.usage(text),
        }))
        .to_string()
    }

    fn error(&self, _status: StatusCode, code: Option<&str>, message: &str) -> String {
        json!({"error": {"message": message, "type": "mock_error", "code": code}}).to_string()
    }

    fn preamble(&self) -> Vec<Step> {
        vec![self.chunk(json!({"role": "assistant", "content": ""}), Value::Null)]
    }

    fn piece_event(&self, text: &str, huge_index: bool) -> (Option<&'static str>, String) {
        let index = if huge_index { u32::MAX } else { 0 };
        let json = self.chunk_json(index, json!({ "content": text }), Value::Null);
        (None, json)
    }

    fn malformed(&self) -> Step {
        event(None, "{\"choices\": [{\"delta\": {\"content\": \"broken")
    }

    fn error_event(&self, code: &str, message: &str) -> Step {
        let error = json!({"error": {"message": message, "type": "server_error", "code": code}});
        event(None, &error.to_string())
    }

    fn finish(&self, text: &str, shape: &StreamShape) -> Vec<Step> {
        let mut steps = Vec::new();
        if !shape.without_finish {
            let finish = shape.finish_reason.as_deref().unwrap_or("stop");
            steps.push(self.chunk(json!({}), json!(finish)));
        }
        if self.0.body["stream_options"]["include_usage"] == json!(true) {
            let usage = if shape.garbled_usage {
                json!({"prompt_tokens": "many", "completion_tokens": [], "total_tokens": -1})
            } else {
                self.usage(text)
            };
            let chunk = json!({
                "id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": CREATED, "model": self.0.model,
                "choices": [], "usage": usage,
            });
            steps.push(event(None, &self.stamped(chunk).to_string()));
        }
        if !shape.without_done {
            steps.push(self.end());
        }
        steps
    }

    fn end(&self) -> Step {
        event(None, "[DONE]")
    }
}

fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
