//! Errors answered in OpenAI's shape, and the status each failure gets.

use std::fmt;
use std::time::Duration;

use axum::response::{IntoResponse, Response};
use http::{header, HeaderName, HeaderValue, StatusCode};
use serde::Serialize;
use tokio::time::Instant;

use super::headers::{attempt_headers, AttemptCounts, SHOULD_RETRY_HEADER};
use crate::{ChatError, ErrorKind};

/// An error as the HTTP server answers it:
/// `{"error": {"message", "type", "code", "param"}}` with a fitting status,
/// `Retry-After` (whole seconds, rounded up, at least 1) when a wait is
/// known, and [`x-should-retry: false`](super::SHOULD_RETRY_HEADER) when the
/// gateway has already retried.
///
/// [`from_chat_error`](Self::from_chat_error) applies this table (the first
/// matching row wins):
///
/// | failure | status | `type` | `code` |
/// |---|---|---|---|
/// | several candidates failed, all rate limited or cooling down | 429 + `Retry-After` when known | `rate_limit_error` | `rate_limit_exceeded` |
/// | several candidates skipped, all cooling down | 503 + `Retry-After` when known | `upstream_error` | `cooling_down` |
/// | several candidates failed (`candidates_failed() > 1`) | 502 | `upstream_error` | `all_candidates_failed` |
/// | `RateLimited` | 429 + `Retry-After` when known | `rate_limit_error` | the provider's code, else `rate_limit_exceeded` |
/// | `CoolingDown` | 503 + `Retry-After` | `upstream_error` | `cooling_down` |
/// | `Timeout` | 504 | `upstream_error` | `timeout` |
/// | `Server`, `Connect`, `StreamInterrupted` | 502 | `upstream_error` | `upstream_error`, `upstream_unreachable`, `stream_interrupted` |
/// | `Auth` | 502 | `upstream_error` | `upstream_auth_failed` |
/// | `NotFound` | 404 | `invalid_request_error` | `model_not_found` |
/// | `ContextWindowExceeded` | 400 | `invalid_request_error` | `context_length_exceeded` |
/// | `ContentFilter` | 400 | `invalid_request_error` | `content_filter` |
/// | `BadRequest` | the provider's 400 or 422, else 400 | `invalid_request_error` | the provider's code |
/// | `Cancelled` | 503 | `server_error` | `cancelled` |
/// | `Config` | 500 | `server_error` | `config_error` |
///
/// Why these: the caller's request was fine when an upstream key is rejected,
/// so `Auth` is a 502 (a gateway fault), never a 401 that would make clients
/// doubt their own key. Every candidate rate limited is still "slow down", so
/// it stays a 429 that clients' retry logic honours. The message is the
/// error's display: with several candidates it lists every attempt.
///
/// Every 502, 503 and 504, and every 429 answered for a stack's error, says
/// `x-should-retry: false`: the stack has already retried and fallen back
/// as configured, and the official OpenAI SDKs would otherwise retry twice
/// more by default, multiplying the load on providers that are failing.
/// A client that keeps its SDK defaults thus sends one request per call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError(Box<Inner>);

#[derive(Clone, Debug, PartialEq, Eq)]
struct Inner {
    status: StatusCode,
    body: ErrorBody,
    retry_after: Option<Duration>,
    attempts: Option<AttemptCounts>,
    /// The stack's final answer, after its own retries and fallbacks.
    from_stack: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
struct ErrorBody {
    message: String,
    #[serde(rename = "type")]
    kind: &'static str,
    code: Option<String>,
    param: Option<&'static str>,
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: &'a ErrorBody,
}

impl ApiError {
    /// An error with a status, a `type` and an optional `code`.
    pub fn new(
        status: StatusCode,
        kind: &'static str,
        code: Option<&str>,
        message: impl Into<String>,
    ) -> Self {
        ApiError(Box::new(Inner {
            status,
            body: ErrorBody {
                message: message.into(),
                kind,
                code: code.map(str::to_owned),
                param: None,
            },
            retry_after: None,
            attempts: None,
            from_stack: false,
        }))
    }

    /// A 400 `invalid_request_error` about the caller's request.
    pub fn invalid_request(code: Option<&str>, message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            code,
            message,
        )
    }

    /// Names the request parameter the error is about (`model`, `messages`).
    pub fn with_param(mut self, param: &'static str) -> Self {
        self.0.body.param = Some(param);
        self
    }

    /// Adds a `Retry-After`.
    pub fn with_retry_after(mut self, after: Duration) -> Self {
        self.0.retry_after = Some(after);
        self
    }

    /// The error a stack's failure is answered with (see the table above).
    pub fn from_chat_error(error: &ChatError) -> Self {
        let mut api = classify(error);
        api.0.retry_after = wait_of(error);
        api.0.from_stack = true;
        if !error.attempts().is_empty() {
            api.0.attempts = Some(AttemptCounts::of(error.attempts(), None));
        }
        api
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.0.status
    }

    /// The `error.type` field.
    pub fn kind(&self) -> &str {
        self.0.body.kind
    }

    /// The `error.code` field.
    pub fn code(&self) -> Option<&str> {
        self.0.body.code.as_deref()
    }

    /// The `error.message` field.
    pub fn message(&self) -> &str {
        &self.0.body.message
    }

    /// The `Retry-After` sent, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        self.0.retry_after.filter(|_| self.has_retry_after())
    }

    /// Whether a client may retry the request itself: `false` for every
    /// 502, 503 and 504, and for a 429 answered for a stack's error (the
    /// stack already retried); sent as `x-should-retry: false`.
    pub fn should_retry(&self) -> bool {
        match self.0.status {
            StatusCode::BAD_GATEWAY
            | StatusCode::SERVICE_UNAVAILABLE
            | StatusCode::GATEWAY_TIMEOUT => false,
            StatusCode::TOO_MANY_REQUESTS => !self.0.from_stack,
            _ => true,
        }
    }

    fn has_retry_after(&self) -> bool {
        matches!(
            self.0.status,
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
        )
    }

    /// The body, `{"error": {...}}`, as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&Envelope {
            error: &self.0.body,
        })
        .expect("an error body always serializes")
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.0.status, self.0.body.message)
    }
}

impl std::error::Error for ApiError {}

impl From<&ChatError> for ApiError {
    fn from(error: &ChatError) -> Self {
        ApiError::from_chat_error(error)
    }
}

impl From<ChatError> for ApiError {
    fn from(error: ChatError) -> Self {
        ApiError::from_chat_error(&error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.0.status,
            [(header::CONTENT_TYPE, "application/json")],
            self.to_json(),
        )
            .into_response();
        let headers = response.headers_mut();
        if let Some(after) = self.retry_after() {
            // A wait from a provider or a service of yours: never past the clamp.
            let after = after.min(crate::providers::http_error::MAX_RETRY_AFTER);
            let secs = ceil_secs(after).max(1);
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if !self.should_retry() {
            headers.insert(
                HeaderName::from_static(SHOULD_RETRY_HEADER),
                HeaderValue::from_static("false"),
            );
        }
        if let Some(counts) = &self.0.attempts {
            attempt_headers(headers, None, counts);
        }
        response
    }
}

/// Whole seconds, rounded up: a client told `1` for 300 ms waits long enough.
pub(crate) fn ceil_secs(d: Duration) -> u64 {
    d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0))
}

fn wait_of(error: &ChatError) -> Option<Duration> {
    let cooling = error.cooling_until().map(|until| {
        until
            .saturating_duration_since(Instant::now())
            .max(Duration::from_secs(1))
    });
    error.retry_after().or(cooling)
}

fn classify(error: &ChatError) -> ApiError {
    let message = error.to_string();
    let upstream = |status: StatusCode, code: &str| {
        ApiError::new(status, "upstream_error", Some(code), message.clone())
    };
    let rate_limited = |code: Option<&str>| {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            Some(code.unwrap_or("rate_limit_exceeded")),
            message.clone(),
        )
    };
    if error.candidates_failed() > 1 {
        return if only_rate_limited(error) {
            rate_limited(None)
        } else if only_cooling(error) {
            upstream(StatusCode::SERVICE_UNAVAILABLE, "cooling_down")
        } else {
            upstream(StatusCode::BAD_GATEWAY, "all_candidates_failed")
        };
    }
    let invalid = |status: StatusCode, code: Option<&str>| {
        ApiError::new(status, "invalid_request_error", code, message.clone())
    };
    match error.kind() {
        ErrorKind::RateLimited => rate_limited(error.code()),
        ErrorKind::CoolingDown => upstream(StatusCode::SERVICE_UNAVAILABLE, "cooling_down"),
        ErrorKind::Timeout => upstream(StatusCode::GATEWAY_TIMEOUT, "timeout"),
        ErrorKind::Server => upstream(StatusCode::BAD_GATEWAY, "upstream_error"),
        ErrorKind::Connect => upstream(StatusCode::BAD_GATEWAY, "upstream_unreachable"),
        ErrorKind::StreamInterrupted => upstream(StatusCode::BAD_GATEWAY, "stream_interrupted"),
        ErrorKind::Auth => upstream(StatusCode::BAD_GATEWAY, "upstream_auth_failed"),
        ErrorKind::NotFound => invalid(StatusCode::NOT_FOUND, Some("model_not_found")),
        ErrorKind::ContextWindowExceeded => {
            invalid(StatusCode::BAD_REQUEST, Some("context_length_exceeded"))
        }
        ErrorKind::ContentFilter => invalid(StatusCode::BAD_REQUEST, Some("content_filter")),
        ErrorKind::BadRequest => {
            let status = match error.status() {
                Some(s @ (StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY)) => s,
                _ => StatusCode::BAD_REQUEST,
            };
            invalid(status, error.code())
        }
        ErrorKind::Cancelled => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            Some("cancelled"),
            message,
        ),
        ErrorKind::Config => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            Some("config_error"),
            message,
        ),
    }
}

/// Whether every failed attempt was a rate limit or a skip while cooling
/// down, with at least one real rate limit among them.
fn only_rate_limited(error: &ChatError) -> bool {
    let failed = || error.attempts().iter().filter_map(|a| a.error);
    failed().any(|k| k == ErrorKind::RateLimited)
        && failed().all(|k| matches!(k, ErrorKind::RateLimited | ErrorKind::CoolingDown))
}

/// Whether every attempt was a skip of a cooling model: no upstream call
/// failed, the gateway only knows when one reopens.
fn only_cooling(error: &ChatError) -> bool {
    let attempts = error.attempts();
    !attempts.is_empty()
        && attempts
            .iter()
            .all(|a| a.error == Some(ErrorKind::CoolingDown))
}
