//! The Anthropic Messages wire format, server side.

use http::request::Parts;
use http::{Response, StatusCode};
use serde_json::{json, Value};
use tokio::time::Instant;

use super::{event, json_response, path_and_query, token_counts, wrong_method, Body, Frames, Step};
use crate::chat::Role;
use crate::mock::call::ServerCall;
use crate::mock::reply::StreamShape;
use crate::Message;

/// Reads a `POST /v1/messages` call. The recorded messages are the system
/// prompt (as a system message) and each turn's text; the exact body is in
/// [`ServerCall::body`].
#[allow(clippy::result_large_err)]
pub(super) fn parse(parts: &Parts, body: &[u8]) -> Result<ServerCall, Response<Body>> {
    if let Some(message) = wrong_method(parts) {
        return Err(error_response(StatusCode::METHOD_NOT_ALLOWED, &message));
    }
    let invalid = |message: String| error_response(StatusCode::BAD_REQUEST, &message);
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| invalid(format!("mock server: the body is not JSON: {e}")))?;
    let Some(model) = value["model"].as_str() else {
        return Err(invalid("model: Field required".to_owned()));
    };
    let Some(turns) = value["messages"].as_array() else {
        return Err(invalid("messages: Field required".to_owned()));
    };
    let mut messages = Vec::with_capacity(turns.len() + 1);
    let system = text_of(&value["system"]);
    if !system.is_empty() {
        messages.push(Message::system(system));
    }
    for turn in turns {
        let role = match turn["role"].as_str() {
            Some("assistant") => Role::Assistant,
            _ => Role::User,
        };
        messages.push(Message::new(role, text_of(&turn["content"])));
    }
    Ok(ServerCall {
        model: model.to_owned(),
        at: Instant::now(),
        messages,
        stream: value["stream"] == json!(true),
        body: value.clone(),
        raw_body: bytes::Bytes::copy_from_slice(body),
        headers: parts.headers.clone(),
        path: path_and_query(parts),
    })
}

/// A string, or the text blocks of a list, joined.
fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter(|b| b["type"] == "text")
            .filter_map(|b| b["text"].as_str())
            .collect(),
        _ => String::new(),
    }
}

/// The error `type` Anthropic sends with `status`.
fn error_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        500..=599 => "api_error",
        _ => "invalid_request_error",
    }
}

fn error_body(kind: &str, message: &str) -> Value {
    json!({"type": "error", "error": {"type": kind, "message": message}})
}

fn error_response(status: StatusCode, message: &str) -> Response<Body> {
    json_response(status, error_body(error_type(status), message).to_string())
}

/// Anthropic's name for an OpenAI finish reason (others are sent as given).
fn stop_reason(finish: Option<&str>) -> &str {
    match finish.unwrap_or("stop") {
        "stop" => "end_turn",
        "length" => "max_tokens",
        "tool_calls" => "tool_use",
        other => other,
    }
}

/// Frames answers as Anthropic `message` objects and Messages stream events.
pub(super) struct AnthropicFrames<'a>(pub(super) &'a ServerCall);

impl Frames for AnthropicFrames<'_> {
    fn completion(&self, text: &str, finish: Option<&str>) -> String {
        let (input, output) = token_counts(text, self.0);
        json!({
            "id": "msg_mock", "type": "message", "role": "assistant", "model": self.0.model,
            "content": [{"type": "text", "text": text}],
            "stop_reason": stop_reason(finish), "stop_sequence": null,
            "usage": {"input_tokens": input, "output_tokens": output},
        })
        .to_string()
    }

    fn error(&self, status: StatusCode, code: Option<&str>, message: &str) -> String {
        error_body(code.unwrap_or(error_type(status)), message).to_string()
    }

    fn preamble(&self) -> Vec<Step> {
        let (input, _) = token_counts("", self.0);
        let start = json!({"type": "message_start", "message": {
            "id": "msg_mock", "type": "message", "role": "assistant", "model": self.0.model,
            "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": input, "output_tokens": 1},
        }});
        let block = json!({"type": "content_block_start", "index": 0,
            "content_block": {"type": "text", "text": ""}});
        vec![
            event(Some("message_start"), &start.to_string()),
            event(Some("content_block_start"), &block.to_string()),
            event(Some("ping"), r#"{"type": "ping"}"#),
        ]
    }

    fn piece_event(&self, text: &str, huge_index: bool) -> (Option<&'static str>, String) {
        let index = if huge_index { u64::MAX } else { 0 };
        let delta = json!({"type": "content_block_delta", "index": index,
            "delta": {"type": "text_delta", "text": text}});
        (Some("content_block_delta"), delta.to_string())
    }

    fn malformed(&self) -> Step {
        event(
            Some("content_block_delta"),
            r#"{"type": "content_block_delta", "delta": {"text": "broken"#,
        )
    }

    fn error_event(&self, code: &str, message: &str) -> Step {
        event(Some("error"), &error_body(code, message).to_string())
    }

    fn finish(&self, text: &str, shape: &StreamShape) -> Vec<Step> {
        let (_, output) = token_counts(text, self.0);
        let output = if shape.garbled_usage {
            json!("many")
        } else {
            json!(output)
        };
        let delta = json!({"type": "message_delta",
            "delta": {"stop_reason": stop_reason(shape.finish_reason.as_deref()), "stop_sequence": null},
            "usage": {"output_tokens": output}});
        let mut steps = vec![event(
            Some("content_block_stop"),
            r#"{"type": "content_block_stop", "index": 0}"#,
        )];
        if !shape.without_finish {
            steps.push(event(Some("message_delta"), &delta.to_string()));
        }
        if !shape.without_done {
            steps.push(self.end());
        }
        steps
    }

    fn end(&self) -> Step {
        event(Some("message_stop"), r#"{"type": "message_stop"}"#)
    }
}
