//! Backoff curves: exact without jitter, full and decorrelated jitter,
//! per-model curves, invalid curves refused.

use super::*;

#[tokio::test(start_paused = true)]
async fn without_jitter_delays_follow_the_curve_exactly() {
    let mock = MockProvider::new();
    mock.always(A, MockReply::error(ErrorKind::Server));
    let _ = layer(5).layer(mock.clone()).oneshot(request(A)).await;
    assert_eq!(gaps(&mock), [ms(100), ms(200), ms(400), ms(800), ms(1000)]);
}

#[tokio::test(start_paused = true)]
async fn full_jitter_delays_stay_under_the_curve_and_spread_over_it() {
    let curve = backoff(ms(100), 2.0, ms(1000), Jitter::Full);
    let mut ratios = Vec::new();
    for seed in 0..20 {
        let mock = MockProvider::new();
        mock.always(A, MockReply::error(ErrorKind::Server));
        let retry = RetryLayer::builder()
            .max_retries(5)
            .backoff(curve)
            .no_budget()
            .rng(SharedRng::seeded(seed))
            .build()
            .unwrap();
        let _ = retry.layer(mock.clone()).oneshot(request(A)).await;
        let gaps = gaps(&mock);
        assert_eq!(gaps.len(), 5);
        for (n, gap) in gaps.iter().enumerate() {
            let ceiling = curve.ceiling(n as u32);
            // Tokio's timer rounds up to the millisecond.
            assert!(
                *gap <= ceiling + ms(1),
                "seed {seed}: retry {n} waited {gap:?} > {ceiling:?}"
            );
            ratios.push(gap.as_secs_f64() / ceiling.as_secs_f64());
        }
    }
    let mean = ratios.iter().sum::<f64>() / ratios.len() as f64;
    assert!(
        (0.35..0.65).contains(&mean),
        "uniform jitter should average half the curve, got {mean}"
    );
}

#[tokio::test(start_paused = true)]
async fn decorrelated_jitter_waits_between_base_and_factor_times_the_previous_delay() {
    let curve = backoff(ms(100), 3.0, ms(2000), Jitter::Decorrelated);
    let mut distinct = std::collections::BTreeSet::new();
    for seed in 0..10 {
        let mock = MockProvider::new();
        mock.always(A, MockReply::error(ErrorKind::Server));
        let retry = RetryLayer::builder()
            .max_retries(6)
            .backoff(curve)
            .no_budget()
            .rng(SharedRng::seeded(seed))
            .build()
            .unwrap();
        let _ = retry.layer(mock.clone()).oneshot(request(A)).await;
        let mut previous = ms(100);
        for gap in gaps(&mock) {
            let high = (previous * 3).min(ms(2000));
            assert!(
                gap >= ms(100) && gap <= high + ms(1),
                "{gap:?} outside [100ms, {high:?}]"
            );
            distinct.insert(gap);
            previous = gap;
        }
    }
    assert!(
        distinct.len() > 30,
        "delays should be random, got {distinct:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn backoff_is_configured_per_model() {
    let mock = MockProvider::new();
    mock.script(
        A,
        [MockReply::error(ErrorKind::Server), MockReply::text("a")],
    );
    mock.script(
        B,
        [MockReply::error(ErrorKind::Server), MockReply::text("b")],
    );
    let retry = RetryLayer::builder()
        .backoff(exact_backoff())
        .backoff_for(B, backoff(ms(1500), 2.0, ms(5000), Jitter::None))
        .build()
        .unwrap()
        .layer(mock.clone());

    let start = Instant::now();
    retry.clone().oneshot(request(A)).await.unwrap();
    assert_eq!(start.elapsed(), ms(100));
    let start = Instant::now();
    retry.oneshot(request(B)).await.unwrap();
    assert_eq!(start.elapsed(), ms(1500));
}

#[test]
fn invalid_backoffs_are_rejected_naming_the_bad_value() {
    let error = Backoff::builder().factor(0.5).build().unwrap_err();
    assert_eq!(error.problems()[0].path, "backoff.factor");
    assert!(error.to_string().contains("0.5"), "{error}");

    let error = Backoff::builder().factor(f64::NAN).build().unwrap_err();
    assert!(error.to_string().contains("NaN"), "{error}");

    let error = Backoff::builder()
        .base(Duration::from_secs(10))
        .cap(Duration::from_secs(2))
        .build()
        .unwrap_err();
    assert!(
        error.to_string().contains("2s") && error.to_string().contains("10s"),
        "{error}"
    );

    let error = Backoff::builder().base(Duration::ZERO).build().unwrap_err();
    assert_eq!(error.problems()[0].path, "backoff.base");
}
