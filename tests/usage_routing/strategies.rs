//! The strategies beside the weighted draw (least busy, lowest usage,
//! lowest latency), per route and from config. Paused time.

use super::*;

#[tokio::test(start_paused = true)]
async fn least_busy_sends_each_call_to_the_deployment_with_fewest_in_flight() {
    let mock = MockProvider::new();
    mock.always(A, MockReply::text("a").after(ms(1000)));
    mock.always(B, MockReply::text("b").after(ms(1000)));
    // Weighted 10:1 would send nearly all to A.
    let svc = service(
        balance(&[(A, 10.0), (B, 1.0)]).strategy(RoutingStrategy::LeastBusy),
        &mock,
    );

    let mut calls = JoinSet::new();
    for _ in 0..10 {
        let svc = svc.clone();
        calls.spawn(async move { svc.oneshot(request("gpt-4o")).await });
    }
    while let Some(result) = calls.join_next().await {
        result.unwrap().unwrap();
    }
    assert_eq!((mock.call_count(A), mock.call_count(B)), (5, 5));
}

#[tokio::test(start_paused = true)]
async fn lowest_usage_keeps_the_deployments_equally_full_against_their_limits() {
    let mock = MockProvider::new();
    let svc = limited(
        balance(&[(A, 1.0), (B, 1.0)]).strategy(RoutingStrategy::LowestUsage),
        limits()
            .limits(A, Limits::default().with_rpm(100))
            .limits(B, Limits::default().with_rpm(10)),
        &mock,
    );
    for _ in 0..22 {
        call(&svc, request("gpt-4o")).await.unwrap();
    }
    // 20 % of each limit, where an even draw would give B eleven.
    assert_eq!((mock.call_count(A), mock.call_count(B)), (20, 2));
}

#[tokio::test(start_paused = true)]
async fn lowest_latency_avoids_the_slow_deployment_and_shares_within_the_buffer() {
    let mock = MockProvider::new();
    mock.always(A, MockReply::text("a").after(ms(100)));
    mock.always(B, MockReply::text("b").after(ms(300)));
    mock.always(C, MockReply::text("c").after(ms(105)));
    let svc = service(
        balance(&[(A, 1.0), (B, 1.0), (C, 1.0)])
            .strategy(RoutingStrategy::LowestLatency)
            .latency_buffer(0.1),
        &mock,
    );
    for _ in 0..60 {
        call(&svc, request("gpt-4o")).await.unwrap();
    }
    assert_eq!(mock.call_count(B), 1, "measured once, then avoided");
    let (a, c) = (mock.call_count(A), mock.call_count(C));
    assert_eq!(a + c, 59);
    assert!(
        a >= 15 && c >= 15,
        "5 % apart, within the 10 % buffer: {a} / {c}"
    );
}

#[test]
fn config_sets_strategy_and_limits_and_rejects_bad_ones() {
    let config: BalanceConfig = serde_json::from_value(serde_json::json!({
        "routes": {"gpt-4o": {A: 1, B: 1}},
        "strategy": "lowest_latency",
        "latency_buffer": 0.2
    }))
    .unwrap();
    let section: LimitConfig =
        serde_json::from_value(serde_json::json!({A: {"rpm": 60, "tpm": 90000}})).unwrap();
    assert_eq!(config.strategy, RoutingStrategy::LowestLatency);
    assert_eq!(section[A], Limits::default().with_rpm(60).with_tpm(90_000));
    WeightedBalanceLayer::from_config(&config).unwrap();
    LimitLayer::from_config(
        &section,
        &Scope::new(),
        |_| true,
        Arc::new(InMemoryUsage::new()),
    )
    .unwrap();

    let bad: BalanceConfig = serde_json::from_value(serde_json::json!({
        "routes": {"gpt-4o": {A: 1, B: 1}},
        "latency_buffer": -1.0
    }))
    .unwrap();
    let error = WeightedBalanceLayer::from_config(&bad)
        .unwrap_err()
        .to_string();
    assert!(error.contains("latency_buffer"), "{error}");
    let error = limits()
        .limits("gpt-4o-mini", Limits::default().with_rpm(60))
        .limits(B, Limits::default().with_tpm(0))
        .build()
        .unwrap_err()
        .to_string();
    assert!(error.contains("limits.gpt-4o-mini: model id"), "{error}");
    assert!(error.contains(&format!("limits.{B}")), "{error}");
}

#[tokio::test(start_paused = true)]
async fn each_route_picks_by_its_own_strategy() {
    let mock = MockProvider::new();
    for m in [A, B, C] {
        mock.always(m, MockReply::text("slow").after(ms(1000)));
    }
    let svc = service(
        WeightedBalanceLayer::builder()
            .route("busy", [(A, 10.0), (B, 1.0)])
            .route("drawn", [(C, 1.0), ("openai/gpt-4o-mini", 0.0)])
            .rng(SharedRng::seeded(5))
            .strategy_for("busy", RoutingStrategy::LeastBusy),
        &mock,
    );
    let mut calls = JoinSet::new();
    for alias in ["busy", "busy", "drawn", "drawn"] {
        let svc = svc.clone();
        calls.spawn(async move { call(&svc, request(alias)).await.unwrap() });
    }
    calls.join_all().await;
    // Least busy spreads the two concurrent calls against the weights; the
    // weighted route follows its weights alone (C, however busy).
    assert_eq!((mock.call_count(A), mock.call_count(B)), (1, 1));
    assert_eq!(mock.call_count(C), 2);

    let e = balance(&[(A, 1.0)])
        .strategy_for("gpt-5", RoutingStrategy::LeastBusy)
        .latency_buffer_for("gpt-4o", f64::NAN)
        .build()
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(r#"strategy_for.gpt-5: "gpt-5" is not a route alias"#),
        "{e}"
    );
    assert!(e.contains("latency_buffer_for.gpt-4o: NaN"), "{e}");
}
