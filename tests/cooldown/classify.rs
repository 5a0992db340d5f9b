//! What counts as a failure: kinds, overrides, a custom classifier,
//! attempt timeouts; and invalid settings refused when built.

use super::*;

#[tokio::test(start_paused = true)]
async fn kinds_that_do_not_count_never_trip_the_breaker() {
    let mock = MockProvider::new();
    mock.always(AZURE, MockReply::error(ErrorKind::BadRequest));
    mock.always(OPENAI, MockReply::error(ErrorKind::ContextWindowExceeded));
    let builder = CooldownLayer::builder()
        .consecutive_failures(2)
        .failure_ratio(0.5, secs(10), 3);
    let (layer, service) = stack(builder, &mock);

    for _ in 0..20 {
        assert_eq!(
            call(&service, AZURE).await.unwrap_err().kind(),
            ErrorKind::BadRequest
        );
        let _ = call(&service, OPENAI).await;
    }
    assert_eq!(mock.call_count(AZURE), 20);
    assert_eq!(mock.call_count(OPENAI), 20);
    assert!(layer.health().is_available(AZURE));
}

#[tokio::test(start_paused = true)]
async fn which_kinds_count_and_trip_at_once_can_be_overridden() {
    let mock = MockProvider::new();
    mock.always(AZURE, MockReply::error(ErrorKind::Auth));
    mock.always(OPENAI, MockReply::error(ErrorKind::BadRequest));
    let builder = CooldownLayer::builder()
        .consecutive_failures(2)
        .counting([ErrorKind::BadRequest])
        .tripping_at_once([]);
    let (_, service) = stack(builder, &mock);

    for _ in 0..4 {
        let _ = call(&service, AZURE).await;
        let _ = call(&service, OPENAI).await;
    }
    assert_eq!(mock.call_count(AZURE), 4, "auth no longer counts");
    assert_eq!(mock.call_count(OPENAI), 2, "bad requests now count");
}

#[tokio::test(start_paused = true)]
async fn a_custom_classifier_decides_what_trips() {
    let mock = MockProvider::new();
    mock.always(
        AZURE,
        MockReply::error(ErrorKind::BadRequest).with_status(StatusCode::PAYMENT_REQUIRED),
    );
    let builder = CooldownLayer::builder().classify_with(|e| {
        if e.status() == Some(StatusCode::PAYMENT_REQUIRED) {
            Verdict::Trip(Some(Duration::from_secs(60)))
        } else {
            default_verdict(e)
        }
    });
    let (layer, service) = stack(builder, &mock);

    let start = Instant::now();
    let _ = call(&service, AZURE).await;
    assert_eq!(
        call(&service, AZURE).await.unwrap_err().kind(),
        ErrorKind::CoolingDown
    );
    assert_eq!(layer.health().cooling_until(AZURE), Some(start + secs(60)));
}

#[tokio::test(start_paused = true)]
async fn an_attempt_timeout_counts_but_the_callers_total_budget_does_not() {
    let mock = MockProvider::new();
    mock.always(AZURE, MockReply::text("late").after(secs(60)));
    let layer = CooldownLayer::builder()
        .consecutive_failures(1)
        .build()
        .unwrap();
    let service = ServiceBuilder::new()
        .layer(layer.clone())
        .layer(TimeoutLayer::attempt(secs(10)))
        .service(mock.clone());

    let mut short = request(AZURE);
    short.set_deadline(Instant::now() + secs(2));
    let error = service.clone().oneshot(short).await.unwrap_err();
    assert_eq!(error.timeout_kind(), Some(TimeoutKind::Total));
    assert!(layer.health().is_available(AZURE));

    let error = call(&service, AZURE).await.unwrap_err();
    assert_eq!(error.timeout_kind(), Some(TimeoutKind::Attempt));
    assert!(!layer.health().is_available(AZURE));
    // Both attempts are logged once, by the timeout layer.
    assert_eq!(error.attempts().len(), 1);
}

#[test]
fn invalid_settings_are_rejected_when_built_naming_the_value() {
    let error = CooldownLayer::builder()
        .failure_ratio(1.5, secs(10), 5)
        .build()
        .unwrap_err();
    assert_eq!(error.problems()[0].path, "cooldown.failure_ratio");
    assert!(error.problems()[0].message.contains("1.5"), "{error}");

    let error = CooldownLayer::builder()
        .cooldown(PerModel::new(secs(5)).with(AZURE, Duration::ZERO))
        .failure_ratio_per_model(
            PerModel::new(None).with("gpt 4o", Some(FailureRatio::new(0.5, secs(1), 1))),
        )
        .growing_by(0.5, secs(60))
        .build()
        .unwrap_err();
    let paths: Vec<_> = error.problems().iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "cooldown.growth",
            "cooldown.azure/gpt-4o.cooldown",
            "cooldown.azure/gpt-4o.growth",
            "cooldown.gpt 4o"
        ]
    );
}
