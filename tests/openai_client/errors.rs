//! Failure classification: statuses, error codes and messages, Azure's
//! content filter, Retry-After, errors in success bodies.

use super::*;

#[tokio::test]
async fn every_error_status_maps_to_its_kind() {
    let table = [
        (429, ErrorKind::RateLimited),
        (401, ErrorKind::Auth),
        (403, ErrorKind::Auth),
        (404, ErrorKind::NotFound),
        (408, ErrorKind::Timeout),
        (400, ErrorKind::BadRequest),
        (422, ErrorKind::BadRequest),
        (409, ErrorKind::BadRequest),
        (500, ErrorKind::Server),
        (502, ErrorKind::Server),
        (503, ErrorKind::Server),
        (504, ErrorKind::Server),
        (529, ErrorKind::Server),
    ];
    for (status, kind) in table {
        let e = fail_with(ServerReply::status(status)).await;
        assert_eq!(e.kind(), kind, "status {status}");
        assert_eq!(e.status().map(|s| s.as_u16()), Some(status));
        assert_eq!(e.model(), Some("gpt-4o-mini"));
        assert!(
            e.message().starts_with("mock "),
            "provider message kept: {e}"
        );
    }
}

#[tokio::test]
async fn error_codes_and_messages_in_the_body_refine_the_kind() {
    let table = [
        (
            429,
            "insufficient_quota",
            "You exceeded your current quota",
            ErrorKind::RateLimited,
        ),
        (
            429,
            "rate_limit_exceeded",
            "Rate limit reached",
            ErrorKind::RateLimited,
        ),
        (
            400,
            "context_length_exceeded",
            "This model's maximum context length is 8192 tokens",
            ErrorKind::ContextWindowExceeded,
        ),
        (
            400,
            "",
            "This model's maximum context length is 8192 tokens",
            ErrorKind::ContextWindowExceeded,
        ),
        (
            400,
            "invalid_request_error",
            "prompt is too long: 210000 tokens > 200000 maximum",
            ErrorKind::ContextWindowExceeded,
        ),
        (
            400,
            "content_policy_violation",
            "Your request was rejected",
            ErrorKind::ContentFilter,
        ),
        (
            400,
            "content_filter",
            "The response was filtered",
            ErrorKind::ContentFilter,
        ),
        (
            404,
            "model_not_found",
            "The model `gpt-9` does not exist",
            ErrorKind::NotFound,
        ),
        (
            400,
            "model_not_found",
            "The model `gpt-9` does not exist",
            ErrorKind::NotFound,
        ),
        (
            400,
            "invalid_value",
            "temperature must be at most 2",
            ErrorKind::BadRequest,
        ),
    ];
    for (status, code, message, kind) in table {
        let e = fail_with(ServerReply::error(status, code, message)).await;
        assert_eq!(e.kind(), kind, "{status} {code} {message}");
        assert_eq!(e.message(), message);
        if !code.is_empty() {
            assert_eq!(e.code(), Some(code));
        }
    }
}

#[tokio::test]
async fn azure_content_filter_inner_code_is_a_content_filter_error() {
    let body = json!({"error": {"code": "content_filter", "message": "The prompt was filtered",
        "innererror": {"code": "ResponsibleAIPolicyViolation", "content_filter_result": {}}}});
    let e = fail_with(ServerReply::raw(400, "application/json", body.to_string())).await;
    assert_eq!(e.kind(), ErrorKind::ContentFilter);
    assert_eq!(e.message(), "The prompt was filtered");
}

#[tokio::test]
async fn retry_after_is_read_in_seconds_milliseconds_and_as_a_date() {
    let e = fail_with(ServerReply::status(429).with_retry_after(Duration::from_secs(2))).await;
    assert_eq!(e.retry_after(), Some(Duration::from_secs(2)));

    let e = fail_with(ServerReply::status(429).with_retry_after_ms(1500.0)).await;
    assert_eq!(e.retry_after(), Some(Duration::from_millis(1500)));

    let date = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
    let e = fail_with(ServerReply::status(503).with_header("retry-after", date)).await;
    let after = e.retry_after().unwrap();
    assert!(
        after > Duration::from_secs(27) && after <= Duration::from_secs(30),
        "{after:?}"
    );
}

#[tokio::test]
async fn an_error_status_with_a_non_json_body_keeps_the_status_kind() {
    let e = fail_with(ServerReply::raw(502, "text/html", "<h1>Bad Gateway</h1>")).await;
    assert_eq!(e.kind(), ErrorKind::Server);
    assert_eq!(e.message(), "<h1>Bad Gateway</h1>");
}

#[tokio::test]
async fn an_error_object_in_a_success_body_is_classified() {
    let body = json!({"error": {"message": "Rate limit reached", "code": "rate_limit_exceeded"}});
    let e = fail_with(ServerReply::raw(200, "application/json", body.to_string())).await;
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    assert_eq!(e.code(), Some("rate_limit_exceeded"));
}
