//! Retry-After, the request deadline and the retry budget: what bounds
//! the waiting between attempts.

use super::*;

#[tokio::test(start_paused = true)]
async fn retry_after_is_waited_for_even_when_the_backoff_is_shorter() {
    let mock = MockProvider::new();
    mock.script(
        A,
        [
            MockReply::error(ErrorKind::RateLimited).with_retry_after(Duration::from_secs(2)),
            MockReply::text("ok"),
        ],
    );
    let response = layer(2)
        .layer(mock.clone())
        .oneshot(request(A))
        .await
        .unwrap();
    assert_eq!(response.text().as_deref(), Some("ok"));
    assert!(
        gaps(&mock)[0] >= Duration::from_secs(2),
        "{:?}",
        gaps(&mock)
    );
}

#[tokio::test(start_paused = true)]
async fn retry_after_beyond_the_maximum_returns_the_error_at_once() {
    let slow = || {
        let mock = MockProvider::new();
        mock.script(
            A,
            [
                MockReply::error(ErrorKind::RateLimited).with_retry_after(Duration::from_secs(60)),
                MockReply::text("ok"),
            ],
        );
        mock
    };

    // The default maximum is 10 s: a fallback should act now instead.
    let mock = slow();
    let start = Instant::now();
    let error = layer(2)
        .layer(mock.clone())
        .oneshot(request(A))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::RateLimited);
    assert_eq!(error.retry_after(), Some(Duration::from_secs(60)));
    assert_eq!(mock.call_count(A), 1);
    assert_eq!(start.elapsed(), Duration::ZERO);

    // A larger maximum waits it out.
    let mock = slow();
    let retry = RetryLayer::builder()
        .max_retry_after(Duration::from_secs(90))
        .backoff(exact_backoff())
        .build()
        .unwrap();
    let start = Instant::now();
    retry.layer(mock.clone()).oneshot(request(A)).await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(60));
}

#[tokio::test(start_paused = true)]
async fn the_request_deadline_is_never_slept_past() {
    let mock = MockProvider::new();
    mock.always(A, MockReply::error(ErrorKind::Server).after(ms(100)));
    let retry = RetryLayer::builder()
        .max_retries(10)
        .backoff(backoff(
            Duration::from_secs(1),
            2.0,
            Duration::from_secs(30),
            Jitter::None,
        ))
        .build()
        .unwrap();
    let start = Instant::now();
    let deadline = start + Duration::from_secs(3);
    let mut req = request(A);
    req.set_deadline(deadline);

    let error = retry.layer(mock.clone()).oneshot(req).await.unwrap_err();
    // Call at 0 fails at 0.1 s, waits 1 s; call at 1.1 s fails at 1.2 s; a
    // 2 s wait would end at 3.2 s, past the deadline: give up at 1.2 s.
    assert_eq!(error.kind(), ErrorKind::Server);
    assert_eq!(mock.call_count(A), 2);
    assert_eq!(start.elapsed(), ms(1200));
    assert!(Instant::now() <= deadline);
    assert_eq!(error.attempts().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn fails_fast_when_the_backoff_does_not_fit_before_the_deadline() {
    let mock = MockProvider::new();
    mock.script(
        A,
        [MockReply::error(ErrorKind::Server), MockReply::text("ok")],
    );
    let retry = RetryLayer::builder()
        .backoff(backoff(
            Duration::from_secs(1),
            2.0,
            Duration::from_secs(8),
            Jitter::None,
        ))
        .build()
        .unwrap();
    let start = Instant::now();
    let mut req = request(A);
    req.set_deadline(start + ms(500));
    let error = retry.layer(mock.clone()).oneshot(req).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Server);
    assert_eq!(
        start.elapsed(),
        Duration::ZERO,
        "no sleep when it cannot fit"
    );
    assert_eq!(mock.call_count(A), 1);
}

#[tokio::test(start_paused = true)]
async fn the_budget_stops_a_retry_storm() {
    async fn storm(budgeted: bool) -> usize {
        let mock = MockProvider::new();
        mock.always(A, MockReply::error(ErrorKind::Server).after(ms(10)));
        let mut builder = RetryLayer::builder().max_retries(2).backoff(backoff(
            ms(10),
            2.0,
            ms(100),
            Jitter::None,
        ));
        builder = if budgeted {
            // 1 retry per 4 calls, plus 1 per second over a 1 s window.
            builder.budget(RetryBudget::new(Duration::from_secs(1), 1, 0.25).unwrap())
        } else {
            builder.no_budget()
        };
        let retry = builder.build().unwrap().layer(mock.clone());
        let calls = (0..100).map(|_| retry.clone().oneshot(request(A)));
        let results = join_all(calls).await;
        assert!(results
            .iter()
            .all(|r| r.as_ref().unwrap_err().kind() == ErrorKind::Server));
        mock.call_count(A)
    }

    assert_eq!(
        storm(false).await,
        300,
        "without a budget every call is retried twice"
    );
    let upstream = storm(true).await;
    let retries = upstream - 100;
    assert!(
        retries <= 25 + 1,
        "{retries} retries exceed 0.25 × 100 calls + 1"
    );
    assert!(
        retries >= 20,
        "the budget should still allow some retries, got {retries}"
    );
}
