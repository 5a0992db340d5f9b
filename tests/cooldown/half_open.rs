//! After the cooldown: one half-open probe, growing cooldowns, cancelled
//! probes, forced attempts, and health for the routing layers.

use super::*;

/// Opens `AZURE`'s breaker with one 404 (an unknown model trips at once)
/// and waits out the cooldown.
async fn open_then_wait(
    service: &(impl Service<ChatRequest, Response = ChatResponse, Error = ChatError> + Clone),
    mock: &MockProvider,
    cooldown: Duration,
) {
    mock.script(AZURE, [MockReply::error(ErrorKind::NotFound)]);
    assert_eq!(
        call(service, AZURE).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    tokio::time::advance(cooldown).await;
}

#[tokio::test(start_paused = true)]
async fn half_open_admits_exactly_one_probe_among_ten_concurrent_calls_and_closes_on_success() {
    let mock = MockProvider::new();
    let (layer, service) = stack(CooldownLayer::builder().cooldown(secs(5)), &mock);
    open_then_wait(&service, &mock, secs(5)).await;
    mock.script(AZURE, [MockReply::text("recovered").after(secs(1))]);

    let mut calls = JoinSet::new();
    for _ in 0..10 {
        let service = service.clone();
        calls.spawn(async move { service.oneshot(request(AZURE)).await });
    }
    let (mut served, mut refused) = (0, 0);
    while let Some(result) = calls.join_next().await {
        match result.unwrap() {
            Ok(response) => {
                assert_eq!(response.text().as_deref(), Some("recovered"));
                served += 1;
            }
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::CoolingDown);
                assert!(e.cooling_until().unwrap() >= Instant::now());
                refused += 1;
            }
        }
    }
    assert_eq!((served, refused), (1, 9));
    assert_eq!(mock.call_count(AZURE), 2);

    // The probe's success closed the breaker: calls flow again.
    assert!(layer.health().is_available(AZURE));
    for _ in 0..3 {
        assert!(call(&service, AZURE).await.is_ok());
    }
    assert_eq!(mock.call_count(AZURE), 5);
}

#[tokio::test(start_paused = true)]
async fn a_failed_probe_reopens_the_breaker_for_the_same_cooldown() {
    let mock = MockProvider::new();
    let (layer, service) = stack(CooldownLayer::builder().cooldown(secs(5)), &mock);
    open_then_wait(&service, &mock, secs(5)).await;

    mock.script(AZURE, [MockReply::error(ErrorKind::Server)]);
    assert_eq!(
        call(&service, AZURE).await.unwrap_err().kind(),
        ErrorKind::Server
    );
    let reopened = Instant::now();
    assert_eq!(
        layer.health().cooling_until(AZURE),
        Some(reopened + secs(5))
    );
    assert_eq!(
        call(&service, AZURE).await.unwrap_err().kind(),
        ErrorKind::CoolingDown
    );
    assert_eq!(mock.call_count(AZURE), 2);
}

#[tokio::test(start_paused = true)]
async fn failed_probes_grow_the_cooldown_up_to_its_cap_and_a_success_resets_it() {
    let mock = MockProvider::new();
    let builder = CooldownLayer::builder()
        .cooldown(secs(5))
        .growing_by(2.0, secs(15));
    let (layer, service) = stack(builder, &mock);
    open_then_wait(&service, &mock, secs(5)).await;

    let mut cooldowns = Vec::new();
    for _ in 0..3 {
        mock.script(AZURE, [MockReply::error(ErrorKind::Server)]);
        let _ = call(&service, AZURE).await;
        let until = layer.health().cooling_until(AZURE).unwrap();
        let cooldown = until - Instant::now();
        cooldowns.push(cooldown);
        tokio::time::advance(cooldown).await;
    }
    assert_eq!(cooldowns, [secs(10), secs(15), secs(15)]);

    assert!(call(&service, AZURE).await.is_ok());
    mock.script(AZURE, [MockReply::error(ErrorKind::NotFound)]);
    let _ = call(&service, AZURE).await;
    assert_eq!(
        layer.health().cooling_until(AZURE),
        Some(Instant::now() + secs(5))
    );
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_probe_frees_the_half_open_slot() {
    let mock = MockProvider::new();
    let (layer, service) = stack(CooldownLayer::builder().cooldown(secs(5)), &mock);
    open_then_wait(&service, &mock, secs(5)).await;

    mock.script(AZURE, [MockReply::text("too slow").after(secs(60))]);
    let probe = tokio::time::timeout(secs(1), call(&service, AZURE)).await;
    assert!(probe.is_err(), "the probe was cut off by the caller");

    // Not stuck half-open: the next call is the new probe, and closes it.
    assert!(call(&service, AZURE).await.is_ok());
    assert_eq!(mock.call_count(AZURE), 3);
    assert!(layer.health().is_available(AZURE));
}

#[tokio::test(start_paused = true)]
async fn force_attempt_goes_through_an_open_breaker() {
    let mock = MockProvider::new();
    let (layer, service) = stack(CooldownLayer::builder().cooldown(secs(30)), &mock);
    mock.script(AZURE, [MockReply::error(ErrorKind::NotFound)]);
    let _ = call(&service, AZURE).await;
    assert!(!layer.health().is_available(AZURE));

    let mut forced = request(AZURE);
    forced.extensions_mut().insert(ForceAttempt);
    let response = service.clone().oneshot(forced).await.unwrap();
    assert_eq!(response.text().as_deref(), Some("ok from azure/gpt-4o"));
    assert_eq!(mock.call_count(AZURE), 2);
    // It worked, so the model is back in use.
    assert!(layer.health().is_available(AZURE));
}

#[tokio::test(start_paused = true)]
async fn health_reports_an_open_model_until_its_time() {
    let mock = MockProvider::new();
    mock.script(
        AZURE,
        [MockReply::error(ErrorKind::RateLimited).with_retry_after(secs(3))],
    );
    let (layer, service) = stack(CooldownLayer::builder(), &mock);
    let health = layer.health();
    assert!(health.is_available(AZURE));

    let start = Instant::now();
    let _ = call(&service, AZURE).await;
    assert_eq!(health.cooling_until(AZURE), Some(start + secs(3)));
    assert!(!health.is_available(AZURE));
    assert!(health.is_available(OPENAI));
    tokio::time::advance(secs(2)).await;
    assert!(!health.is_available(AZURE));
    tokio::time::advance(secs(1)).await;
    assert!(health.is_available(AZURE));
}

#[tokio::test(start_paused = true)]
async fn health_counts_each_opening_and_closing_of_a_breaker() {
    let mock = MockProvider::new();
    let (layer, service) = stack(CooldownLayer::builder().cooldown(secs(5)), &mock);
    let health = layer.health();
    assert_eq!(health.transitions(AZURE), Default::default());

    open_then_wait(&service, &mock, secs(5)).await;
    let counts = health.transitions(AZURE);
    assert_eq!((counts.opened, counts.closed), (1, 0));

    // A failed probe opens it again; a good one closes it.
    mock.script(AZURE, [MockReply::error(ErrorKind::Server)]);
    assert!(call(&service, AZURE).await.is_err());
    tokio::time::advance(secs(5)).await;
    assert!(call(&service, AZURE).await.is_ok());
    let counts = health.transitions(AZURE);
    assert_eq!((counts.opened, counts.closed), (2, 1));
    assert_eq!(health.transitions(OPENAI), Default::default());
}
