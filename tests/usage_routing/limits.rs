//! Limits in memory: full deployments skipped, all full fails fast, tokens
//! estimated then settled, streams held until they end. Paused time.

use super::*;

#[tokio::test(start_paused = true)]
async fn a_deployment_at_its_rpm_limit_is_skipped_without_a_call_until_the_minute_ends() {
    let mock = MockProvider::new();
    let svc = limited(
        balance(&[(A, 1.0), (B, 1.0)]),
        limits().limits(A, Limits::default().with_rpm(2)),
        &mock,
    );
    for _ in 0..2 {
        assert_eq!(call(&svc, request(A)).await.unwrap().model(), A);
    }
    // Named, A is tried first and refused without a call; B serves.
    let served = call(&svc, request(A)).await.unwrap();
    assert_eq!(served.model(), B);
    let refused = &served.attempts()[0];
    assert_eq!((refused.model.as_str(), refused.upstream), (A, false));
    assert_eq!(refused.error, Some(ErrorKind::CoolingDown));
    // Drawn, A is not even tried while full.
    for _ in 0..10 {
        let served = call(&svc, request("gpt-4o")).await.unwrap();
        assert_eq!(served.attempts().len(), 1);
        assert_eq!(served.model(), B);
    }
    assert_eq!(mock.call_count(A), 2);

    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(call(&svc, request(A)).await.unwrap().model(), A);
}

#[tokio::test(start_paused = true)]
async fn every_deployment_at_its_limit_fails_fast_with_cooling_down() {
    let mock = MockProvider::new();
    let one = Limits::default().with_rpm(1);
    let svc = limited(
        balance(&[(A, 1.0), (B, 1.0)]),
        limits().limits(A, one).limits(B, one),
        &mock,
    );
    call(&svc, request("gpt-4o")).await.unwrap();
    call(&svc, request("gpt-4o")).await.unwrap();
    let error = call(&svc, request("gpt-4o")).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::CoolingDown);
    assert!(error.attempts().iter().all(|a| !a.upstream));
    let reason = &error.attempts()[0].message;
    assert!(
        reason.starts_with("at its limit (rpm 1) until the minute ends"),
        "{reason}"
    );
    assert_eq!(mock.calls().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn tokens_are_estimated_before_the_call_and_settled_from_the_usage_after_it() {
    let mock = MockProvider::new();
    mock.script(
        A,
        [
            MockReply::text("two words"),
            MockReply::error(ErrorKind::Server),
        ],
    );
    let usage = Arc::new(InMemoryUsage::new());
    let svc = limited(
        balance(&[(A, 1.0), (B, 1.0)]),
        limits()
            .limits(A, Limits::default().with_tpm(100))
            .store(usage.clone()),
        &mock,
    );
    // 200 bytes of prompt and 30 tokens of answer: 80 tokens estimated.
    let big = ChatRequest::new(A, [Message::user("x".repeat(200))])
        .with_extra("max_tokens", serde_json::json!(30));

    assert_eq!(call(&svc, big.clone()).await.unwrap().model(), A);
    // The mock reports 1 prompt + 2 completion tokens: 3 counted, not 80.
    assert_eq!(usage.usage(A).unwrap().tokens, 3);
    // So a second one fits (80 + 80 would not); it fails upstream: a
    // request without tokens.
    assert_eq!(call(&svc, big.clone()).await.unwrap().model(), B);
    let used = usage.usage(A).unwrap();
    assert_eq!((used.requests, used.tokens), (2, 3));
    assert_eq!(mock.call_count(A), 2);
}

#[tokio::test(start_paused = true)]
async fn a_stream_stays_in_flight_until_it_ends_and_settles_its_usage_chunk() {
    let mock = MockProvider::new();
    let usage = Arc::new(InMemoryUsage::new());
    let roomy = Limits::default().with_tpm(10_000);
    let svc = limited(
        balance(&[(A, 1.0), (B, 1.0)]).strategy(RoutingStrategy::LeastBusy),
        limits()
            .limits(A, roomy)
            .limits(B, roomy)
            .store(usage.clone()),
        &mock,
    );
    let streamed = call(&svc, request(A).with_stream(true)).await.unwrap();
    assert_eq!(
        usage.usage(A).unwrap().tokens,
        2,
        "the estimate: 5 bytes of prompt"
    );

    // A's stream is still open: the least busy is B, every time.
    for _ in 0..3 {
        assert_eq!(call(&svc, request("gpt-4o")).await.unwrap().model(), B);
    }
    let completion = streamed.into_stream().unwrap().collect_completion().await;
    let reported = completion.unwrap().usage.unwrap().total_tokens;
    assert_eq!(usage.usage(A).unwrap().tokens, reported);
    // A is idle again and B has served more: least busy ties, both get calls.
    let mut served = Vec::new();
    for _ in 0..20 {
        served.push(
            call(&svc, request("gpt-4o"))
                .await
                .unwrap()
                .model()
                .to_owned(),
        );
    }
    assert!(served.iter().any(|m| m == A) && served.iter().any(|m| m == B));
}

#[tokio::test(start_paused = true)]
async fn a_limited_model_requested_by_its_id_is_held_to_its_limit_too() {
    let mock = MockProvider::new();
    // C is in no route: requests for it pass through, counted.
    let svc = limited(
        balance(&[(A, 1.0), (B, 1.0)]).by_alias_only(),
        limits()
            .limits(A, Limits::default().with_rpm(2))
            .limits(C, Limits::default().with_rpm(1)),
        &mock,
    );
    for _ in 0..2 {
        call(&svc, request(A)).await.unwrap();
    }
    call(&svc, request(C)).await.unwrap();
    for model in [A, C] {
        let e = call(&svc, request(model)).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::CoolingDown, "{e}");
    }
    assert_eq!((mock.call_count(A), mock.call_count(C)), (2, 1));
    // The alias draws B only: A is full.
    for _ in 0..3 {
        assert_eq!(call(&svc, request("gpt-4o")).await.unwrap().model(), B);
    }
}
