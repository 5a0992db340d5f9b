//! Provider error bodies to typed errors: OpenAI's
//! (`{"error": {"message", "type", "code"}}`), Azure's (with `innererror`) and
//! Anthropic's (`{"type": "error", "error": {"type", "message"}}`).

use http::{HeaderMap, StatusCode};
use serde_json::Value;

use crate::chat::{ChatError, ErrorKind};
use crate::providers::http_error::{
    excerpt, kind_for_status, mentions_context_window, retry_after,
};
use crate::secret::ApiKey;

/// Longest excerpt of a body quoted in an error message.
pub(crate) const EXCERPT_CHARS: usize = 200;

const RATE_LIMIT: &[&str] = &[
    "rate_limit_exceeded",
    "insufficient_quota",
    "rate_limit_error",
    "too_many_requests",
];
const NOT_FOUND: &[&str] = &["model_not_found", "deploymentnotfound", "not_found_error"];
const CONTEXT: &[&str] = &["context_length_exceeded"];
const CONTENT: &[&str] = &[
    "content_policy_violation",
    "content_filter",
    "responsibleaipolicyviolation",
];
const AUTH: &[&str] = &[
    "invalid_api_key",
    "authentication_error",
    "permission_error",
];

/// What an error body says.
#[derive(Debug, Default)]
pub(crate) struct ErrorBody {
    message: Option<String>,
    /// `code`, `type` and Azure's `innererror.code`, lowercased.
    codes: Vec<String>,
    /// The code to report: `code`, else `type`.
    code: Option<String>,
}

impl ErrorBody {
    /// Reads `{"error": {...}}`, `{"error": "text"}` or a bare
    /// `{"message": ...}`; `None` when the JSON says nothing of an error.
    pub(crate) fn from_json(value: &Value) -> Option<ErrorBody> {
        let error = match value.get("error") {
            Some(Value::Object(e)) => e,
            Some(Value::String(s)) => {
                return Some(ErrorBody {
                    message: Some(s.clone()),
                    ..Default::default()
                })
            }
            _ => value.as_object()?,
        };
        let text = |v: Option<&Value>| match v {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let code = text(error.get("code"));
        let kind = text(error.get("type"));
        let inner = text(error.get("innererror").and_then(|i| i.get("code")));
        let message = text(error.get("message")).or_else(|| text(error.get("detail")));
        if message.is_none() && code.is_none() && kind.is_none() {
            return None;
        }
        let codes = [&code, &kind, &inner]
            .into_iter()
            .flatten()
            .map(|c| c.to_ascii_lowercase())
            .collect();
        Some(ErrorBody {
            message,
            codes,
            code: code.or(kind),
        })
    }

    fn has(&self, list: &[&str]) -> bool {
        self.codes.iter().any(|c| list.contains(&c.as_str()))
    }

    /// The kind, from the status (when the provider sent an error status)
    /// refined by the body's codes and message.
    pub(crate) fn kind(&self, status: Option<StatusCode>) -> ErrorKind {
        let message = self.message.as_deref().unwrap_or("");
        if let Some(status) = status {
            match kind_for_status(status) {
                ErrorKind::BadRequest | ErrorKind::NotFound => {}
                // 429, auth, timeout and 5xx say enough by themselves.
                kind => return kind,
            }
        }
        if self.has(NOT_FOUND) || status == Some(StatusCode::NOT_FOUND) {
            ErrorKind::NotFound
        } else if self.has(CONTEXT) || mentions_context_window(message) {
            ErrorKind::ContextWindowExceeded
        } else if self.has(CONTENT) {
            ErrorKind::ContentFilter
        } else if let Some(status) = status {
            kind_for_status(status)
        } else if self.has(RATE_LIMIT) {
            ErrorKind::RateLimited
        } else if self.has(AUTH) {
            ErrorKind::Auth
        } else {
            // An error event in a stream, or in a 2xx body: the provider
            // failed while answering.
            ErrorKind::Server
        }
    }

    fn into_error(
        self,
        status: Option<StatusCode>,
        fallback: impl FnOnce() -> String,
    ) -> ChatError {
        let kind = self.kind(status);
        let mut e = ChatError::new(kind, self.message.unwrap_or_else(fallback));
        if let Some(code) = self.code {
            e = e.with_code(code);
        }
        e
    }
}

/// The error of a response with a non-2xx status.
pub(crate) fn from_status(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    key: Option<&ApiKey>,
) -> ChatError {
    let parsed = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| ErrorBody::from_json(&v));
    let mut e = match parsed {
        Some(parsed) => parsed.into_error(Some(status), || status.to_string()),
        None => {
            let text = excerpt(body, EXCERPT_CHARS);
            let message = if text.is_empty() {
                status.to_string()
            } else {
                text
            };
            ChatError::new(kind_for_status(status), message)
        }
    };
    e = e.with_status(status);
    if let Some(after) = retry_after(headers) {
        e = e.with_retry_after(after);
    }
    scrub(e, key)
}

/// The error carried in a 2xx JSON body or an SSE event, if it is one.
pub(crate) fn from_json(value: &Value, key: Option<&ApiKey>) -> Option<ChatError> {
    match value.get("error") {
        None | Some(Value::Null) => None,
        Some(_) => {
            let body = ErrorBody::from_json(value).unwrap_or_default();
            Some(scrub(
                body.into_error(None, || "the provider reported an error".into()),
                key,
            ))
        }
    }
}

/// Removes the key from a message: a provider echoing it must not leak it.
pub(crate) fn scrub(mut e: ChatError, key: Option<&ApiKey>) -> ChatError {
    if let Some(key) = key.filter(|k| !k.is_empty()) {
        if e.message().contains(key.expose()) {
            let clean = e.message().replace(key.expose(), "****");
            e.set_message(clean);
        }
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn kind(status: u16, body: Value) -> ErrorKind {
        from_status(
            StatusCode::from_u16(status).unwrap(),
            &HeaderMap::new(),
            body.to_string().as_bytes(),
            None,
        )
        .kind()
    }

    #[test]
    fn body_codes_refine_the_status() {
        let err = |code: &str, msg: &str| json!({"error": {"message": msg, "code": code}});
        assert_eq!(
            kind(400, err("context_length_exceeded", "x")),
            ErrorKind::ContextWindowExceeded
        );
        assert_eq!(
            kind(400, err("", "prompt is too long: 300000 tokens")),
            ErrorKind::ContextWindowExceeded
        );
        assert_eq!(
            kind(400, err("content_filter", "x")),
            ErrorKind::ContentFilter
        );
        assert_eq!(kind(400, err("model_not_found", "x")), ErrorKind::NotFound);
        assert_eq!(
            kind(429, err("insufficient_quota", "x")),
            ErrorKind::RateLimited
        );
        assert_eq!(kind(422, err("", "bad")), ErrorKind::BadRequest);
        let azure = json!({"error": {"code": "content_filter", "message": "x",
            "innererror": {"code": "ResponsibleAIPolicyViolation"}}});
        assert_eq!(kind(400, azure), ErrorKind::ContentFilter);
    }

    #[test]
    fn in_band_errors_default_to_server() {
        let e = from_json(
            &json!({"error": {"message": "overloaded", "type": "server_error"}}),
            None,
        );
        assert_eq!(e.unwrap().kind(), ErrorKind::Server);
        let e = from_json(
            &json!({"error": {"message": "slow down", "code": "rate_limit_exceeded"}}),
            None,
        );
        assert_eq!(e.unwrap().kind(), ErrorKind::RateLimited);
        assert!(from_json(&json!({"choices": []}), None).is_none());
    }
}
