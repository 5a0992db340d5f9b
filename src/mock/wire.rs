//! The mock server's side of the OpenAI wire format: reading a request,
//! writing a scripted reply (JSON or SSE, with its faults).

use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use http::request::Parts;
use http::{Method, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde_json::{json, Value};
use tokio::time::Instant;

use super::call::ServerCall;
use super::reply::{ReplyKind, ServerReply};
use crate::ChatRequest;

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub(crate) type Body = UnsyncBoxBody<Bytes, BoxError>;

/// A fixed `created` stamp: the mock needs no wall clock.
const CREATED: u64 = 1_700_000_000;

/// Reads a chat-completions call, or answers the error response for a
/// request that is not one.
#[allow(clippy::result_large_err)]
pub(crate) fn parse(parts: &Parts, body: &[u8]) -> Result<ServerCall, Response<Body>> {
    let path = parts.uri.path();
    let deployment = path
        .strip_prefix("/openai/deployments/")
        .and_then(|rest| rest.strip_suffix("/chat/completions"))
        .map(percent_decode);
    if deployment.is_none() && !path.ends_with("/chat/completions") {
        let message = format!("mock server: no route for {} {path}", parts.method);
        return Err(error_response(StatusCode::NOT_FOUND, "not_found", &message));
    }
    if parts.method != Method::POST {
        let message = format!("mock server: {} is not allowed, use POST", parts.method);
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
        headers: parts.headers.clone(),
        path: parts
            .uri
            .path_and_query()
            .map_or_else(|| path.to_owned(), |p| p.as_str().to_owned()),
    })
}

/// The response to `call`, or `None` to close the connection unanswered.
pub(crate) fn respond(reply: ServerReply, call: &ServerCall) -> Option<Response<Body>> {
    let (status, content_type, steps) = match &reply.kind {
        // The server intercepts a hang before it gets here.
        ReplyKind::Reset | ReplyKind::Hang => return None,
        ReplyKind::Raw {
            status,
            content_type,
            body,
        } => {
            let mut steps = delay(reply.first_token_after);
            steps.push(Step::Data(Bytes::from(body.clone())));
            (*status, content_type.as_str(), steps)
        }
        ReplyKind::Text(text) if call.stream => {
            (StatusCode::OK, "text/event-stream", sse(&reply, text, call))
        }
        ReplyKind::Text(text) => (
            StatusCode::OK,
            "application/json",
            complete(&reply, text, call),
        ),
    };
    let mut response = Response::new(body(steps));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(content_type) {
        headers.insert(CONTENT_TYPE, v);
    }
    for (name, value) in &reply.headers {
        if let (Ok(n), Ok(v)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::from_str(value),
        ) {
            headers.append(n, v);
        }
    }
    Some(response)
}

enum Step {
    Sleep(Duration),
    Data(Bytes),
    /// Fail the body: hyper drops the connection mid-body.
    Abort,
}

fn delay(d: Duration) -> Vec<Step> {
    if d.is_zero() {
        Vec::new()
    } else {
        vec![Step::Sleep(d)]
    }
}

fn body(steps: Vec<Step>) -> Body {
    let frames = futures_util::stream::unfold(steps.into_iter(), |mut steps| async move {
        loop {
            match steps.next()? {
                Step::Sleep(d) => tokio::time::sleep(d).await,
                Step::Data(bytes) => return Some((Ok(Frame::data(bytes)), steps)),
                Step::Abort => {
                    // Let hyper flush what was sent before: the client must
                    // see the head and the chunks, then the break.
                    tokio::task::yield_now().await;
                    let cut: BoxError = "mock server: body cut".into();
                    return Some((Err(cut), steps));
                }
            }
        }
    });
    BodyExt::boxed_unsync(StreamBody::new(frames))
}

fn usage(text: &str, call: &ServerCall) -> Value {
    let prompt: usize = call.messages.iter().map(|m| words(&m.text())).sum();
    let completion = words(text);
    json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion})
}

fn words(text: &str) -> usize {
    text.split_whitespace().count()
}

fn complete(reply: &ServerReply, text: &str, call: &ServerCall) -> Vec<Step> {
    let finish = reply.stream.finish_reason.as_deref().unwrap_or("stop");
    let json = json!({
        "id": "chatcmpl-mock", "object": "chat.completion", "created": CREATED, "model": call.model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}],
        "usage": usage(text, call),
    })
    .to_string();
    let mut steps = delay(reply.first_token_after);
    if let Some((_, pause)) = reply.stream.stall {
        steps.push(Step::Sleep(pause));
    }
    if reply.stream.cut_after.is_some() {
        steps.push(Step::Data(Bytes::from(json[..json.len() / 2].to_owned())));
        steps.push(Step::Abort);
    } else {
        steps.push(Step::Data(Bytes::from(json)));
    }
    steps
}

fn sse(reply: &ServerReply, text: &str, call: &ServerCall) -> Vec<Step> {
    let shape = &reply.stream;
    let event = |delta: Value, finish: Value| {
        let chunk = json!({
            "id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": CREATED, "model": call.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        });
        data(&chunk.to_string())
    };
    let pieces = split(text, shape.chunks);
    let mut steps = vec![event(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    for i in 0..=pieces.len() {
        if i == 0 {
            steps.extend(delay(reply.first_token_after));
        }
        if shape.malformed_after == Some(i) {
            steps.push(data("{\"choices\": [{\"delta\": {\"content\": \"broken"));
        }
        if let Some((_, pause)) = shape.stall.filter(|(n, _)| *n == i) {
            steps.push(Step::Sleep(pause));
        }
        if shape.cut_after == Some(i) {
            steps.push(Step::Abort);
            return steps;
        }
        if let Some((_, error)) = shape.error_after.as_ref().filter(|(n, _)| *n == i) {
            steps.push(data(&error.to_string()));
            return steps;
        }
        if let Some(piece) = pieces.get(i) {
            steps.push(event(json!({"content": piece}), Value::Null));
        }
    }
    let finish = shape.finish_reason.as_deref().unwrap_or("stop");
    steps.push(event(json!({}), json!(finish)));
    let include_usage = call.body["stream_options"]["include_usage"] == json!(true);
    if include_usage {
        let chunk = json!({
            "id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": CREATED, "model": call.model,
            "choices": [], "usage": usage(text, call),
        });
        steps.push(data(&chunk.to_string()));
    }
    if !shape.without_done {
        steps.push(data("[DONE]"));
    }
    steps
}

fn data(payload: &str) -> Step {
    Step::Data(Bytes::from(format!("data: {payload}\n\n")))
}

/// One piece per word (spaces kept), or `n` pieces of about equal length.
fn split(text: &str, n: Option<usize>) -> Vec<String> {
    let Some(n) = n else {
        return text.split_inclusive(' ').map(str::to_owned).collect();
    };
    let chars: Vec<char> = text.chars().collect();
    let n = n.min(chars.len()).max(1);
    (0..n)
        .map(|i| {
            chars[i * chars.len() / n..(i + 1) * chars.len() / n]
                .iter()
                .collect()
        })
        .filter(|s: &String| !s.is_empty())
        .collect()
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

/// An OpenAI-shaped error response.
pub(crate) fn error_response(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    let body =
        json!({"error": {"message": message, "type": "invalid_request_error", "code": code}});
    let mut response = Response::new(self::body(vec![Step::Data(Bytes::from(body.to_string()))]));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn split_makes_n_pieces_that_join_back() {
        let pieces = split("abcdefghij", Some(3));
        assert_eq!(pieces.len(), 3);
        assert_eq!(pieces.concat(), "abcdefghij");
        assert_eq!(split("ab", Some(5)).len(), 2);
        assert_eq!(split("one two", None), ["one ", "two"]);
    }
}
