//! Classifying HTTP failures of any provider: status defaults, `Retry-After`
//! headers, context-window messages, transport errors.
//!
//! The provider clients build on these and add their own error codes; a
//! client of your own can do the same.
//!
//! # Example
//!
//! ```
//! use http::{HeaderMap, StatusCode};
//! use llm_fallback::{providers::http_error, ErrorKind};
//! use std::time::Duration;
//!
//! let mut headers = HeaderMap::new();
//! headers.insert("retry-after-ms", "1500".parse().unwrap());
//! headers.insert("retry-after", "7".parse().unwrap());
//! // The finer header wins.
//! assert_eq!(http_error::retry_after(&headers), Some(Duration::from_millis(1500)));
//! assert_eq!(http_error::kind_for_status(StatusCode::BAD_GATEWAY), ErrorKind::Server);
//! ```

use std::time::{Duration, SystemTime};

use http::{HeaderMap, StatusCode};

use crate::chat::ErrorKind;
use crate::clamp;

/// The longest wait [`retry_after`] reports: one day. A provider asking for
/// more (`retry-after: 1e20`, a date years ahead) gets this; the layers cap
/// it much lower again (retry, cooldown and key-rotation settings).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// How long the provider asked to wait: `retry-after-ms` (milliseconds, may
/// be fractional; OpenAI and Azure send it) first, else `Retry-After` in
/// seconds or as an HTTP date. A date in the past means "now" (zero).
/// Unparsable, negative or NaN values are ignored; larger values (infinity
/// included) are clamped to [`MAX_RETRY_AFTER`]. Never panics.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let number = |v: &str| v.parse::<f64>().ok();
    if let Some(ms) = text("retry-after-ms").and_then(number) {
        if let Some(d) = clamp::secs_f64(ms / 1000.0, MAX_RETRY_AFTER) {
            return Some(d);
        }
    }
    let value = text("retry-after")?;
    if let Some(secs) = number(value) {
        return clamp::secs_f64(secs, MAX_RETRY_AFTER);
    }
    let at = httpdate::parse_http_date(value).ok()?;
    let left = at
        .duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO);
    Some(left.min(MAX_RETRY_AFTER))
}

/// The largest complete (non-streaming) answer the provider clients read:
/// 32 MiB, far above any real completion (long tool-call arguments
/// included). A larger body fails the attempt with kind
/// [`Server`](ErrorKind::Server) (so retry and fallback apply), without
/// reading the rest.
pub const MAX_COMPLETION_BYTES: usize = 32 << 20;

/// How much of an error body (a non-2xx status) the provider clients read:
/// 64 KiB, enough for any provider's error JSON. The rest is not read; the
/// error is classified by its status and what was read.
pub const MAX_ERROR_BYTES: usize = 64 << 10;

/// The kind a status means when the body says nothing more specific:
/// 429 rate limited; 401 and 403 auth; 404 not found; 408 timeout; 5xx and
/// 529 (overloaded) server; any other status is a bad request.
pub fn kind_for_status(status: StatusCode) -> ErrorKind {
    match status.as_u16() {
        429 => ErrorKind::RateLimited,
        401 | 403 => ErrorKind::Auth,
        404 => ErrorKind::NotFound,
        408 => ErrorKind::Timeout,
        500..=599 => ErrorKind::Server,
        _ => ErrorKind::BadRequest,
    }
}

/// Whether a provider's message says the prompt does not fit the model
/// ("maximum context length", "prompt is too long", "context window",
/// Anthropic's "exceed context limit" ...).
pub fn mentions_context_window(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "maximum context length",
        "context length",
        "prompt is too long",
        "context window",
        "context limit",
        "input is too long",
    ]
    .iter()
    .any(|p| m.contains(p))
}

/// At most `max` characters of a body, for error messages (lossy UTF-8,
/// cut at a character boundary, with `...` when cut).
pub fn excerpt(body: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn retry_after_reads_ms_seconds_and_dates() {
        assert_eq!(
            retry_after(&headers(&[("retry-after-ms", "250.5")])),
            Some(Duration::from_micros(250_500))
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after", "2")])),
            Some(Duration::from_secs(2))
        );
        let at = SystemTime::now() + Duration::from_secs(30);
        let d = retry_after(&headers(&[("retry-after", &httpdate::fmt_http_date(at))])).unwrap();
        assert!(
            d > Duration::from_secs(27) && d <= Duration::from_secs(30),
            "{d:?}"
        );
        let past = httpdate::fmt_http_date(SystemTime::now() - Duration::from_secs(60));
        assert_eq!(
            retry_after(&headers(&[("retry-after", &past)])),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(&headers(&[("retry-after", "soon")])), None);
        assert_eq!(retry_after(&headers(&[("retry-after-ms", "-5")])), None);
    }

    #[test]
    fn retry_after_clamps_what_would_overflow() {
        let huge = [
            ("retry-after", "1e20"),
            ("retry-after", "inf"),
            ("retry-after", "18446744073709551616"),
            ("retry-after-ms", "1e300"),
            ("retry-after", "Fri, 31 Dec 9999 23:59:59 GMT"),
        ];
        for (name, value) in huge {
            assert_eq!(
                retry_after(&headers(&[(name, value)])),
                Some(MAX_RETRY_AFTER),
                "{name}: {value}"
            );
        }
        assert_eq!(retry_after(&headers(&[("retry-after", "NaN")])), None);
        // A useless finer header leaves the coarse one in charge.
        assert_eq!(
            retry_after(&headers(&[("retry-after-ms", "NaN"), ("retry-after", "3")])),
            Some(Duration::from_secs(3))
        );
    }

    #[test]
    fn excerpt_cuts_at_a_char_boundary() {
        assert_eq!(excerpt("héllo wörld".as_bytes(), 4), "héll...");
        assert_eq!(excerpt(b"  short ", 10), "short");
    }
}
