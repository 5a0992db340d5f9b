//! The bearer key clients must present, compared in constant time.

use std::fmt;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{header, HeaderValue, StatusCode};
use subtle::{Choice, ConstantTimeEq};

use super::error::ApiError;

/// The accepted keys. Never printed: `Debug` shows only how many there are.
#[derive(Clone, Default)]
pub(crate) struct ApiKeys(Arc<[Box<[u8]>]>);

impl ApiKeys {
    pub(crate) fn new(keys: Vec<String>) -> Self {
        ApiKeys(keys.into_iter().map(|k| k.into_bytes().into()).collect())
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Compares against every key without stopping at a match, so the time
    /// taken says nothing about which key or how many bytes matched.
    fn accepts(&self, presented: &[u8]) -> bool {
        let mut ok = Choice::from(0);
        for key in self.0.iter() {
            ok |= key.as_ref().ct_eq(presented);
        }
        ok.into()
    }
}

impl fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKeys({} redacted)", self.0.len())
    }
}

/// Middleware: lets the request through if it carries an accepted
/// `Authorization: Bearer <key>`, else answers 401 in OpenAI's shape.
pub(crate) async fn require_key(
    State(keys): State<ApiKeys>,
    request: Request,
    next: Next,
) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| bearer(v.as_bytes()));
    let error = match presented {
        Some(Some(key)) if keys.accepts(key) => return next.run(request).await,
        Some(Some(_)) => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            Some("invalid_api_key"),
            "Incorrect API key provided.",
        ),
        Some(None) => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            Some("invalid_api_key"),
            "The Authorization header must be of the form \"Bearer <key>\".",
        ),
        None => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            Some("missing_api_key"),
            "You didn't provide an API key. Send it as \"Authorization: Bearer <key>\".",
        ),
    };
    tracing::info!(
        path = request.uri().path(),
        "request refused: no valid API key"
    );
    let mut response = error.into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// The key of a `Bearer <key>` header value (scheme case-insensitive).
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let key = rest.trim_ascii();
    (!key.is_empty()).then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_values_are_parsed_strictly() {
        assert_eq!(bearer(b"Bearer sk-1"), Some(&b"sk-1"[..]));
        assert_eq!(bearer(b"bearer  sk-1 "), Some(&b"sk-1"[..]));
        assert_eq!(bearer(b"Basic c2stMQ=="), None);
        assert_eq!(bearer(b"Bearer "), None);
        assert_eq!(bearer(b"sk-1"), None);
    }

    #[test]
    fn only_an_exact_key_is_accepted() {
        let keys = ApiKeys::new(vec!["sk-old".into(), "sk-new".into()]);
        assert!(keys.accepts(b"sk-old"));
        assert!(keys.accepts(b"sk-new"));
        assert!(!keys.accepts(b"sk-ne"));
        assert!(!keys.accepts(b"sk-new2"));
        assert!(!keys.accepts(b""));
        assert!(!format!("{keys:?}").contains("sk-"));
    }
}
