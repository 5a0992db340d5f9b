//! `POST /v1/chat/completions`: read and check the body, call the stack,
//! answer in JSON or SSE.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use http::{header, HeaderMap, StatusCode};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::Value;
use tokio::time::Instant;
use tower::ServiceExt;
use tracing::Instrument;

use super::error::ApiError;
use super::headers::{attempt_headers, AttemptCounts};
use super::live::Active;
use super::request_log::{Outcome, RequestLog};
use super::sse::{completion_chunks, model_json, with_model, SseBody};
use super::trace::call_span;
use super::App;
use crate::chat::{AttemptLog, ChatStream, ResponseBody};
use crate::{ChatError, ChatRequest, ChatResponse};

/// What the caller asked for, read from its body before the stack sees the
/// request (an inner layer may change `stream_options` upstream).
struct Asked {
    model: String,
    stream: bool,
    include_usage: bool,
}

pub(crate) async fn chat_completions(State(app): State<Arc<App>>, request: Request) -> Response {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    // One generation for the whole call: a reload meanwhile does not touch it.
    let active = app.live.load_full();
    let mut request = match read_request(&app, &active, &parts.headers, body).await {
        Ok(request) => request,
        Err(e) => {
            tracing::info!(
                status = e.status().as_u16(),
                error = e.message(),
                "request rejected"
            );
            if let Some(metrics) = &app.metrics {
                metrics.rejected(e.status());
            }
            return e.into_response();
        }
    };
    let asked = Asked {
        model: request.model().to_owned(),
        stream: request.is_stream(),
        include_usage: include_usage(&request),
    };
    // Watched live: a stream's attempts go on after the headers are sent.
    let attempts = AttemptLog::of(&mut request);
    let span = call_span(&asked.model, &parts.headers);
    let mut log = RequestLog::new(
        &asked.model,
        asked.stream,
        started,
        attempts,
        app.metrics.clone(),
        span.clone(),
    );
    let result = async {
        match active.stack.clone().oneshot(request).await {
            Ok(response) => answer(response, &asked, &mut log).await,
            Err(e) => Err(e),
        }
    }
    .instrument(span)
    .await;
    match result {
        Ok(Answered::Json(response)) => {
            let status = response.status();
            log.status(status.as_u16());
            log.finish(match status.is_success() {
                true => Outcome::Completed,
                false => Outcome::Failed(None),
            });
            response
        }
        // The stream's body writes the line when it ends.
        Ok(Answered::Stream(response)) => response,
        Err(e) => {
            let api = ApiError::from_chat_error(&e);
            log.status(api.status().as_u16());
            log.finish(Outcome::Failed(Some(e.kind())));
            api.into_response()
        }
    }
}

async fn read_request(
    app: &App,
    active: &Active,
    headers: &HeaderMap,
    body: Body,
) -> Result<ChatRequest, ApiError> {
    check_content_type(headers)?;
    let bytes = read_body(body, headers, app.body_limit).await?;
    let request = parse(bytes)?;
    if !active.serves(request.model()) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            Some("model_not_found"),
            format!(
                "The model `{}` does not exist; GET /v1/models lists the models served.",
                request.model()
            ),
        )
        .with_param("model"));
    }
    Ok(request)
}

fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if mime == "application/json" || mime.starts_with("application/") && mime.ends_with("+json") {
        return Ok(());
    }
    let got = if content_type.is_empty() {
        "none".to_owned()
    } else {
        format!("{content_type:?}")
    };
    Err(ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "invalid_request_error",
        Some("unsupported_media_type"),
        format!("Expected Content-Type: application/json, got {got}."),
    ))
}

async fn read_body(
    body: Body,
    headers: &HeaderMap,
    limit: usize,
) -> Result<bytes::Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            Some("request_too_large"),
            format!("The request body is larger than the limit of {limit} bytes."),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<LengthLimitError>() => Err(too_large()),
        Err(e) => Err(ApiError::invalid_request(
            None,
            format!("The request body could not be read: {e}"),
        )),
    }
}

/// The request, with the client's body kept for the provider. The fields
/// the stack needs are found without building a JSON tree first; a body
/// without them, or that is not JSON, is read again the slow way, for its
/// exact error.
fn parse(bytes: bytes::Bytes) -> Result<ChatRequest, ApiError> {
    match ChatRequest::from_body(bytes.clone()) {
        Some(Ok(request)) => Ok(request),
        // JSON, but not a request (a message without a role, a key twice).
        Some(Err(e)) if e.is_data() && is_json(&bytes) => Err(ApiError::invalid_request(
            None,
            format!("Invalid request: {e}."),
        )),
        // Not JSON (somewhere, perhaps after the error): the slow way says
        // so with its own code.
        Some(Err(_)) | None => parse_slowly(&bytes),
    }
}

/// Whether `bytes` is one JSON value (for an error's wording only).
fn is_json(bytes: &[u8]) -> bool {
    serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok()
}

/// [`parse`] through a JSON tree: slower, with the exact error for each
/// way a body can be wrong.
fn parse_slowly(bytes: &[u8]) -> Result<ChatRequest, ApiError> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        ApiError::invalid_request(
            Some("invalid_json"),
            format!("We could not parse the JSON body of your request: {e}."),
        )
    })?;
    let Value::Object(fields) = &value else {
        return Err(ApiError::invalid_request(
            Some("invalid_json"),
            "The request body must be a JSON object.",
        ));
    };
    let missing = |param: &'static str| {
        ApiError::invalid_request(
            Some("missing_required_parameter"),
            format!("Missing required parameter: `{param}`."),
        )
        .with_param(param)
    };
    let wrong = |param: &'static str, what: &str| {
        ApiError::invalid_request(Some("invalid_type"), format!("`{param}` must be {what}."))
            .with_param(param)
    };
    match fields.get("model") {
        None | Some(Value::Null) => return Err(missing("model")),
        Some(Value::String(m)) if !m.trim().is_empty() => {}
        Some(_) => return Err(wrong("model", "a non-empty string")),
    }
    match fields.get("messages") {
        None | Some(Value::Null) => return Err(missing("messages")),
        Some(Value::Array(m)) if !m.is_empty() => {}
        Some(_) => return Err(wrong("messages", "a non-empty array of messages")),
    }
    serde_json::from_value(value)
        .map_err(|e| ApiError::invalid_request(None, format!("Invalid request: {e}.")))
}

fn include_usage(request: &ChatRequest) -> bool {
    request
        .extra()
        .get("stream_options")
        .and_then(|o| o.get("include_usage"))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// A response whose log line is written (JSON), or will be when the stream
/// ends (SSE).
enum Answered {
    Json(Response),
    Stream(Response),
}

async fn answer(
    mut response: ChatResponse,
    asked: &Asked,
    log: &mut RequestLog,
) -> Result<Answered, ChatError> {
    let served = response.model().to_owned();
    log.served(&served);
    let raw = response.take_raw();
    let counts = AttemptCounts::of(response.attempts(), Some(&served));
    let stream = match (response.into_body(), asked.stream) {
        (ResponseBody::Complete(completion), false) => Err(completion),
        (ResponseBody::Stream(chunks), false) => Err(chunks.collect_completion().await?),
        (ResponseBody::Complete(completion), true) => Ok(ChatStream::from_items(
            completion_chunks(completion).into_iter().map(Ok).collect(),
        )),
        (ResponseBody::Stream(mut chunks), true) => {
            // A fault before anything was sent can still be an honest status.
            let first = match chunks.next_event().await {
                Some(Err(e)) => return Err(e),
                first => first,
            };
            Ok(ChatStream::from_events(
                futures_util::stream::iter(first).chain(chunks.into_events()),
            ))
        }
    };
    let attempted = |mut out: Response| {
        let served = (!served.is_empty()).then_some(served.as_str());
        attempt_headers(out.headers_mut(), served, &counts);
        out
    };
    Ok(match stream {
        Err(completion) => {
            if let Some(usage) = &completion.usage {
                log.usage(usage);
            }
            Answered::Json(attempted(json(completion, raw, &served)))
        }
        Ok(chunks) => {
            let body = SseBody::new(chunks, served.clone(), asked.include_usage, log.hand_over());
            Answered::Stream(attempted(sse(body)))
        }
    })
}

/// The completion as JSON: the provider's own bytes with only `model`
/// replaced when nothing changed them (`raw`), else the typed encoding.
fn json(mut completion: crate::chat::ChatCompletion, raw: Option<Bytes>, served: &str) -> Response {
    if let Some(raw) = raw {
        let model_json = model_json(served);
        if let Some((before, after)) = with_model(&raw, &model_json) {
            let mut body = Vec::with_capacity(raw.len() + model_json.len());
            body.extend_from_slice(before);
            body.extend_from_slice(model_json.as_bytes());
            body.extend_from_slice(after);
            return ([(header::CONTENT_TYPE, "application/json")], body).into_response();
        }
    }
    if !served.is_empty() {
        completion.model = served.to_owned();
    }
    if completion.object.is_empty() {
        completion.object = "chat.completion".to_owned();
    }
    match serde_json::to_vec(&completion) {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "upstream_error",
            Some("upstream_error"),
            format!("The completion could not be encoded: {e}"),
        )
        .into_response(),
    }
}

fn sse(body: SseBody) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(body),
    )
        .into_response()
}
