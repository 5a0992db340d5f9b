//! Limits shared by two replicas over the real Redis. Real time.

use super::*;

/// One replica: balance with limits on a usage store of its own connection.
async fn replica(prefix: &str, mock: &MockProvider) -> Svc {
    let connection = connect(REDIS, prefix, ms(1000)).await;
    let five = Limits::default().with_rpm(5);
    limited(
        balance(&[(A, 1.0), (B, 1.0)]),
        limits()
            .limits(A, five)
            .limits(B, five)
            .store(Arc::new(RedisUsage::new(&connection))),
        mock,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpm_limits_shared_by_two_replicas_are_never_exceeded_under_concurrent_load() {
    let prefix = unique_prefix("rpm");
    within_one_minute(Duration::from_secs(10)).await;
    let (mock_one, mock_two) = (MockProvider::new(), MockProvider::new());
    let one = replica(&prefix, &mock_one).await;
    let two = replica(&prefix, &mock_two).await;

    let mut calls = JoinSet::new();
    for i in 0..40 {
        let svc = if i % 2 == 0 { &one } else { &two }.clone();
        calls.spawn(async move { svc.oneshot(request("gpt-4o")).await });
    }
    let (mut served, mut refused) = (0, 0);
    while let Some(result) = calls.join_next().await {
        match result.unwrap() {
            Ok(_) => served += 1,
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::CoolingDown, "{e}");
                refused += 1;
            }
        }
    }
    assert_eq!((served, refused), (10, 30));
    let upstream = |m| mock_one.call_count(m) + mock_two.call_count(m);
    assert_eq!((upstream(A), upstream(B)), (5, 5));

    cleanup(&prefix).await;
}

#[tokio::test]
async fn usage_on_redis_is_settled_from_the_response_and_its_keys_expire_with_the_window() {
    let prefix = unique_prefix("usage");
    within_one_minute(Duration::from_secs(5)).await;
    let mock = MockProvider::new();
    let connection = connect(REDIS, &prefix, ms(1000)).await;
    let svc = limited(
        balance(&[(A, 1.0), (B, 1.0)]),
        limits()
            .limits(A, Limits::default().with_tpm(1000))
            .store(Arc::new(RedisUsage::new(&connection))),
        &mock,
    );
    let big = ChatRequest::new(A, [Message::user("x".repeat(400))]);
    call(&svc, big).await.unwrap();

    // The settlement is written in the background.
    let key = format!("{prefix}:use:{A}");
    poll_until("the settlement replaced the estimate", async || {
        hget(&key, "t").await.as_deref() == Some("4")
    })
    .await;
    assert_eq!(keys(&prefix).await, std::slice::from_ref(&key));
    assert_eq!(hget(&key, "r").await.as_deref(), Some("1"));
    // 100 estimated, 4 reported by the mock ("ok from azure/gpt-4o" and one prompt word).
    assert_eq!(hget(&key, "t").await.as_deref(), Some("4"));
    let ttl = pttl(&key).await;
    assert!(
        ttl > 60_000 && ttl <= 120_000,
        "the rest of the window and one more: {ttl}"
    );

    cleanup(&prefix).await;
}
