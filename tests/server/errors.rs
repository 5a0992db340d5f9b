//! Failures as HTTP answers: OpenAI-shaped statuses, the all-failed 502,
//! rate limits and cooldowns with Retry-After.

use super::*;

#[tokio::test]
async fn failures_map_to_fitting_openai_statuses() {
    let cases = [
        (
            MockReply::error(ErrorKind::RateLimited).with_retry_after(Duration::from_millis(2500)),
            429,
            "rate_limit_exceeded",
            Some("3"),
        ),
        (
            MockReply::error(ErrorKind::RateLimited),
            429,
            "rate_limit_exceeded",
            None,
        ),
        (MockReply::error(ErrorKind::Timeout), 504, "timeout", None),
        (
            MockReply::error(ErrorKind::Server),
            502,
            "upstream_error",
            None,
        ),
        (
            MockReply::error(ErrorKind::Connect),
            502,
            "upstream_unreachable",
            None,
        ),
        (
            MockReply::error(ErrorKind::Auth),
            502,
            "upstream_auth_failed",
            None,
        ),
        (
            MockReply::error(ErrorKind::NotFound),
            404,
            "model_not_found",
            None,
        ),
        (
            MockReply::error(ErrorKind::ContextWindowExceeded),
            400,
            "context_length_exceeded",
            None,
        ),
        (
            MockReply::error(ErrorKind::ContentFilter),
            400,
            "content_filter",
            None,
        ),
        (
            MockReply::error(ErrorKind::Config),
            500,
            "config_error",
            None,
        ),
    ];
    let mock = MockProvider::new();
    let http = start(Server::builder(mock.clone()).build().unwrap()).await;
    for (i, (reply, status, code, retry_after)) in cases.into_iter().enumerate() {
        let model = format!("p{i}/m");
        mock.always(&model, reply);
        let (got, got_retry_after, error) = error_of(http.chat(&ask(&model)).await).await;
        assert_eq!(got.as_u16(), status, "case {i}: {error}");
        assert_eq!(error["code"], code, "case {i}");
        assert_eq!(got_retry_after.as_deref(), retry_after, "case {i}");
    }
    let bad = MockReply::error(ErrorKind::BadRequest).with_message("temperature must be <= 2");
    mock.always("p/bad", bad);
    let (status, _, error) = error_of(http.chat(&ask("p/bad")).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["type"], "invalid_request_error");
    assert!(error["message"]
        .as_str()
        .unwrap()
        .contains("temperature must be <= 2"));
    http.still_serves().await;
}

#[tokio::test]
async fn all_candidates_failing_is_a_502_listing_every_attempt() {
    let mock = MockProvider::new();
    mock.always("a", MockReply::error(ErrorKind::Server));
    mock.always("b", MockReply::error(ErrorKind::Auth));
    let stack = TinyFallback::new(&mock, &[("smart", &["openai/a", "azure/b"])]);
    let http = start(
        Server::builder(stack)
            .route("smart", ["openai/a", "azure/b"])
            .build()
            .unwrap(),
    )
    .await;

    let response = http.chat(&ask("smart")).await;
    assert_eq!(header(&response, ATTEMPTS_HEADER), Some("2"));
    assert_eq!(header(&response, FALLBACKS_HEADER), Some("1"));
    let (status, _, error) = error_of(response).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(error["code"], "all_candidates_failed");
    let message = error["message"].as_str().unwrap();
    assert!(message.starts_with("all 2 candidates failed"), "{message}");
    assert!(
        message.contains("openai/a: 500 Internal Server Error"),
        "{message}"
    );
    assert!(message.contains("azure/b: 401 Unauthorized"), "{message}");
}

#[tokio::test]
async fn every_candidate_rate_limited_stays_a_429_with_retry_after() {
    let mock = MockProvider::new();
    mock.always("a", MockReply::error(ErrorKind::RateLimited));
    let limited = MockReply::error(ErrorKind::RateLimited).with_retry_after(Duration::from_secs(4));
    mock.always("b", limited);
    let stack = TinyFallback::new(&mock, &[("smart", &["openai/a", "azure/b"])]);
    let http = start(
        Server::builder(stack)
            .route("smart", ["openai/a", "azure/b"])
            .build()
            .unwrap(),
    )
    .await;

    let (status, retry_after, error) = error_of(http.chat(&ask("smart")).await).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(retry_after.as_deref(), Some("4"));
    assert_eq!(error["type"], "rate_limit_error");
    assert!(error["message"]
        .as_str()
        .unwrap()
        .contains("all 2 candidates failed"));
}

#[tokio::test]
async fn a_model_cooling_down_is_a_503_with_retry_after() {
    let cooling = service_fn(|request: ChatRequest| async move {
        Err::<ChatResponse, _>(ChatError::cooling_down(
            request.model(),
            Instant::now() + Duration::from_secs(30),
        ))
    });
    let http = start(Server::builder(cooling).build().unwrap()).await;

    let (status, retry_after, error) = error_of(http.chat(&ask("openai/a")).await).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(retry_after.as_deref(), Some("30"));
    assert_eq!(error["code"], "cooling_down");
}

#[tokio::test]
async fn a_fault_before_the_first_chunk_is_an_honest_status() {
    let failing = service_fn(|request: ChatRequest| async move {
        let error = ChatError::new(ErrorKind::Server, "overloaded").with_model(request.model());
        let stream = ChatStream::from_items(vec![Err::<ChatChunk, _>(error)]);
        Ok::<_, ChatError>(ChatResponse::stream(request.model(), stream))
    });
    let http = start(Server::builder(failing).build().unwrap()).await;

    let (status, _, error) = error_of(http.chat(&ask_stream("openai/a", false)).await).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert!(error["message"].as_str().unwrap().contains("overloaded"));
}
