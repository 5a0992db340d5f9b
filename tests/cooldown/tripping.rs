//! When the breaker opens: consecutive failures, the failure ratio in its
//! window, Retry-After, single 401/429s, unknown models.

use super::*;

#[tokio::test(start_paused = true)]
async fn trips_after_n_consecutive_failures_then_fails_fast_without_an_upstream_call() {
    let mock = MockProvider::new();
    mock.always(AZURE, MockReply::error(ErrorKind::Server));
    let builder = CooldownLayer::builder()
        .consecutive_failures(3)
        .cooldown(secs(10))
        .without_failure_ratio();
    let (_, service) = stack(builder, &mock);

    for _ in 0..2 {
        assert_eq!(
            call(&service, AZURE).await.unwrap_err().kind(),
            ErrorKind::Server
        );
    }
    assert_eq!(
        call(&service, AZURE).await.unwrap_err().kind(),
        ErrorKind::Server
    );
    let tripped = Instant::now();

    tokio::time::advance(secs(4)).await;
    let error = call(&service, AZURE).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::CoolingDown);
    assert_eq!(error.model(), Some(AZURE));
    assert_eq!(error.cooling_until(), Some(tripped + secs(10)));
    assert_eq!(mock.call_count(AZURE), 3);
    // The refusal is in the log, marked as never sent upstream.
    assert_eq!(error.attempts().len(), 1);
    assert_eq!(error.attempts()[0].error, Some(ErrorKind::CoolingDown));
    assert!(!error.attempts()[0].upstream);

    // Other models are not affected.
    assert!(call(&service, OPENAI).await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn a_success_resets_the_consecutive_count() {
    let mock = MockProvider::new();
    let fail = || MockReply::error(ErrorKind::Server);
    mock.script(
        AZURE,
        [fail(), fail(), MockReply::text("ok"), fail(), fail()],
    );
    let builder = CooldownLayer::builder()
        .consecutive_failures(3)
        .without_failure_ratio();
    let (_, service) = stack(builder, &mock);

    for _ in 0..5 {
        let _ = call(&service, AZURE).await;
    }
    assert!(call(&service, AZURE).await.is_ok());
    assert_eq!(mock.call_count(AZURE), 6);
}

#[tokio::test(start_paused = true)]
async fn failure_ratio_trips_only_once_the_minimum_number_of_calls_is_reached() {
    let mock = MockProvider::new();
    let fail = || MockReply::error(ErrorKind::Server);
    let ok = || MockReply::text("ok");
    // 5 failures out of 9 calls is over half, but 9 calls are too few.
    mock.script(
        AZURE,
        [
            fail(),
            ok(),
            fail(),
            ok(),
            fail(),
            ok(),
            fail(),
            ok(),
            fail(),
        ],
    );
    mock.script(AZURE, [fail()]);
    let builder = CooldownLayer::builder()
        .consecutive_failures(0)
        .failure_ratio(0.5, secs(10), 10);
    let (_, service) = stack(builder, &mock);

    for _ in 0..9 {
        let _ = call(&service, AZURE).await;
    }
    assert_eq!(mock.call_count(AZURE), 9);
    // The tenth call (6 of 10 failed) trips it.
    assert_eq!(
        call(&service, AZURE).await.unwrap_err().kind(),
        ErrorKind::Server
    );
    assert_eq!(
        call(&service, AZURE).await.unwrap_err().kind(),
        ErrorKind::CoolingDown
    );
    assert_eq!(mock.call_count(AZURE), 10);
}

#[tokio::test(start_paused = true)]
async fn failures_older_than_the_ratio_window_are_forgotten() {
    let mock = MockProvider::new();
    mock.always(AZURE, MockReply::error(ErrorKind::Server));
    // The breaker's window alone: the throttle's (30 s) would shed calls here.
    let builder = CooldownLayer::builder()
        .without_adaptive_throttle()
        .consecutive_failures(0)
        .failure_ratio(0.5, secs(10), 10);
    let (_, service) = stack(builder, &mock);

    for _ in 0..9 {
        let _ = call(&service, AZURE).await;
    }
    tokio::time::advance(secs(11)).await;
    // Only one failure is left in the window: far from ten calls.
    let _ = call(&service, AZURE).await;
    assert_eq!(
        call(&service, AZURE).await.unwrap_err().kind(),
        ErrorKind::Server
    );
    assert_eq!(mock.call_count(AZURE), 11);
}

#[tokio::test(start_paused = true)]
async fn a_rate_limit_with_retry_after_opens_the_breaker_for_exactly_that_long() {
    let mock = MockProvider::new();
    mock.script(
        AZURE,
        [MockReply::error(ErrorKind::RateLimited).with_retry_after(secs(7))],
    );
    let (layer, service) = stack(CooldownLayer::builder(), &mock);
    let health = layer.health();

    let start = Instant::now();
    assert_eq!(
        call(&service, AZURE).await.unwrap_err().kind(),
        ErrorKind::RateLimited
    );
    assert_eq!(health.cooling_until(AZURE), Some(start + secs(7)));

    tokio::time::advance(secs(7) - Duration::from_millis(1)).await;
    let error = call(&service, AZURE).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::CoolingDown);
    assert_eq!(error.cooling_until(), Some(start + secs(7)));
    assert_eq!(mock.call_count(AZURE), 1);

    tokio::time::advance(Duration::from_millis(1)).await;
    assert!(call(&service, AZURE).await.is_ok());
    assert_eq!(mock.call_count(AZURE), 2);
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_capped_by_the_configured_maximum() {
    let mock = MockProvider::new();
    mock.script(
        AZURE,
        [MockReply::error(ErrorKind::RateLimited).with_retry_after(secs(3600))],
    );
    let (layer, service) = stack(CooldownLayer::builder().max_retry_after(secs(60)), &mock);

    let start = Instant::now();
    let _ = call(&service, AZURE).await;
    assert_eq!(layer.health().cooling_until(AZURE), Some(start + secs(60)));
}

#[tokio::test(start_paused = true)]
async fn a_single_401_or_429_without_retry_after_counts_but_does_not_open_the_breaker() {
    let mock = MockProvider::new();
    mock.script(
        AZURE,
        [
            MockReply::error(ErrorKind::Auth),
            MockReply::error(ErrorKind::RateLimited),
        ],
    );
    let builder = CooldownLayer::builder()
        .consecutive_failures(3)
        .cooldown(secs(5));
    let (layer, service) = stack(builder, &mock);

    let error = call(&service, AZURE).await.unwrap_err();
    assert_eq!(error.status(), Some(StatusCode::UNAUTHORIZED));
    assert!(layer.health().is_available(AZURE), "one 401 is no trend");
    let error = call(&service, AZURE).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::RateLimited);
    assert!(layer.health().is_available(AZURE), "nor is one 429");
    // They counted: a third failure in a row opens it.
    mock.script(AZURE, [MockReply::error(ErrorKind::Auth)]);
    let _ = call(&service, AZURE).await;
    let opened = Instant::now();
    let error = call(&service, AZURE).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::CoolingDown);
    assert_eq!(error.cooling_until(), Some(opened + secs(5)));
    assert_eq!(mock.call_count(AZURE), 3);
}

#[tokio::test(start_paused = true)]
async fn an_unknown_model_opens_the_breaker_at_once_for_the_cooldown() {
    let mock = MockProvider::new();
    mock.script(AZURE, [MockReply::error(ErrorKind::NotFound)]);
    let (_, service) = stack(CooldownLayer::builder().cooldown(secs(5)), &mock);

    let start = Instant::now();
    let error = call(&service, AZURE).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound);
    let error = call(&service, AZURE).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::CoolingDown);
    assert_eq!(error.cooling_until(), Some(start + secs(5)));
    assert_eq!(mock.call_count(AZURE), 1);
}
