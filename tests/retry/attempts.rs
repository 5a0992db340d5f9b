//! Which failures are retried and how often, per model; the attempt log;
//! the inner service driven ready before every retry.

use super::*;

#[tokio::test(start_paused = true)]
async fn per_model_retry_counts_are_exact() {
    let mock = MockProvider::new();
    mock.always(A, MockReply::error(ErrorKind::Server));
    mock.always(B, MockReply::error(ErrorKind::Server));
    let retry = RetryLayer::builder()
        .max_retries(2)
        .max_retries_for(B, 0)
        .backoff(exact_backoff())
        .build()
        .unwrap()
        .layer(mock.clone());

    let error = retry.clone().oneshot(request(A)).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Server);
    assert_eq!(mock.call_count(A), 3);
    assert_eq!(error.attempts().len(), 3);

    let error = retry.oneshot(request(B)).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Server);
    assert_eq!(mock.call_count(B), 1);
    assert_eq!(error.attempts().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn retryable_kinds_are_retried() {
    for kind in [
        ErrorKind::RateLimited,
        ErrorKind::Server,
        ErrorKind::Connect,
    ] {
        let mock = MockProvider::new();
        mock.always(A, MockReply::error(kind));
        let error = layer(2)
            .layer(mock.clone())
            .oneshot(request(A))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), kind);
        assert_eq!(mock.call_count(A), 3, "{kind} should be retried twice");
    }
}

#[tokio::test(start_paused = true)]
async fn non_retryable_kinds_are_returned_after_one_call() {
    for kind in [
        ErrorKind::Auth,
        ErrorKind::BadRequest,
        ErrorKind::Timeout,
        ErrorKind::NotFound,
        ErrorKind::ContextWindowExceeded,
        ErrorKind::ContentFilter,
    ] {
        let mock = MockProvider::new();
        mock.always(A, MockReply::error(kind));
        let start = Instant::now();
        let error = layer(3)
            .layer(mock.clone())
            .oneshot(request(A))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), kind);
        assert_eq!(mock.call_count(A), 1, "{kind} must not be retried");
        assert_eq!(start.elapsed(), Duration::ZERO, "{kind} must not wait");
    }
}

#[tokio::test(start_paused = true)]
async fn success_on_the_second_try_returns_the_response_with_two_attempts() {
    let mock = MockProvider::new();
    mock.script(
        A,
        [
            MockReply::error(ErrorKind::Server),
            MockReply::text("second time lucky"),
        ],
    );
    let response = layer(2)
        .layer(mock.clone())
        .oneshot(request(A))
        .await
        .unwrap();
    assert_eq!(response.text().as_deref(), Some("second time lucky"));
    assert_eq!(mock.call_count(A), 2);
    let attempts = response.attempts();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0].error, Some(ErrorKind::Server));
    assert!(attempts[1].is_success());
}

#[tokio::test(start_paused = true)]
async fn the_attempt_log_lists_every_attempt_with_its_latency() {
    let mock = MockProvider::new();
    mock.script(
        A,
        [
            MockReply::error(ErrorKind::Server).after(ms(50)),
            MockReply::error(ErrorKind::RateLimited).after(ms(20)),
            MockReply::text("ok").after(ms(30)),
        ],
    );
    let response = layer(2)
        .layer(mock.clone())
        .oneshot(request(A))
        .await
        .unwrap();
    let attempts = response.attempts();
    let summary: Vec<_> = attempts
        .iter()
        .map(|a| (a.model.as_str(), a.error, a.latency, a.upstream))
        .collect();
    assert_eq!(
        summary,
        [
            (A, Some(ErrorKind::Server), ms(50), true),
            (A, Some(ErrorKind::RateLimited), ms(20), true),
            (A, None, ms(30), true),
        ]
    );
    assert_eq!(attempts[0].status.map(|s| s.as_u16()), Some(500));
}

#[tokio::test(start_paused = true)]
async fn attempts_an_inner_layer_recorded_are_not_logged_twice() {
    // An inner layer (an attempt Timeout, say) that records its own outcome.
    #[derive(Clone)]
    struct Recording(MockProvider);
    impl Service<ChatRequest> for Recording {
        type Response = ChatResponse;
        type Error = ChatError;
        type Future = llm_fallback::chat::ChatFuture;
        fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ChatError>> {
            self.0.poll_ready(cx)
        }
        fn call(&mut self, mut request: ChatRequest) -> Self::Future {
            let log = AttemptLog::of(&mut request);
            let call = self.0.call(request);
            llm_fallback::chat::ChatFuture::new(async move {
                let result = call.await;
                let mut attempt = Attempt::success("inner/label", Duration::ZERO);
                attempt.error = result.as_ref().err().map(ChatError::kind);
                log.push(attempt);
                result
            })
        }
    }
    let mock = MockProvider::new();
    mock.script(
        A,
        [MockReply::error(ErrorKind::Server), MockReply::text("ok")],
    );
    let response = layer(2)
        .layer(Recording(mock))
        .oneshot(request(A))
        .await
        .unwrap();
    let models: Vec<_> = response
        .attempts()
        .iter()
        .map(|a| a.model.as_str())
        .collect();
    assert_eq!(models, ["inner/label", "inner/label"]);
}

/// Pending on the first poll of each readiness cycle; panics when called
/// without having been polled ready.
struct StrictReady {
    inner: MockProvider,
    ready: bool,
    pending_next: bool,
}

impl Clone for StrictReady {
    fn clone(&self) -> Self {
        StrictReady {
            inner: self.inner.clone(),
            ready: false,
            pending_next: true,
        }
    }
}

impl Service<ChatRequest> for StrictReady {
    type Response = ChatResponse;
    type Error = ChatError;
    type Future = llm_fallback::chat::ChatFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ChatError>> {
        if self.pending_next {
            self.pending_next = false;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        self.ready = true;
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: ChatRequest) -> Self::Future {
        assert!(self.ready, "called without being polled ready");
        self.ready = false;
        self.pending_next = true;
        self.inner.call(request)
    }
}

#[tokio::test(start_paused = true)]
async fn every_retry_drives_the_inner_service_ready_again() {
    let mock = MockProvider::new();
    mock.script(
        A,
        [
            MockReply::error(ErrorKind::Server),
            MockReply::error(ErrorKind::Server),
            MockReply::text("ok"),
        ],
    );
    let inner = StrictReady {
        inner: mock.clone(),
        ready: false,
        pending_next: true,
    };
    let response = Retry::new(inner, RetryLayer::new(2))
        .oneshot(request(A))
        .await
        .unwrap();
    assert_eq!(response.text().as_deref(), Some("ok"));
    assert_eq!(mock.call_count(A), 3);
}
