//! Custom predicates and policies, the built-in policy used as a custom
//! one, and layer settings refused at build time.

use super::*;

#[tokio::test(start_paused = true)]
async fn a_custom_predicate_decides_which_failures_are_retried() {
    let mock = MockProvider::new();
    mock.always(A, MockReply::error(ErrorKind::Timeout));
    mock.always(B, MockReply::error(ErrorKind::Server));
    let retry = RetryLayer::builder()
        .max_retries(2)
        .backoff(exact_backoff())
        .retry_if(|e| e.kind() == ErrorKind::Timeout)
        .build()
        .unwrap()
        .layer(mock.clone());
    let _ = retry.clone().oneshot(request(A)).await;
    let _ = retry.oneshot(request(B)).await;
    assert_eq!(mock.call_count(A), 3);
    assert_eq!(mock.call_count(B), 1);
}

#[tokio::test(start_paused = true)]
async fn a_custom_policy_decides_whether_and_when() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let policy = move |ctx: &RetryContext<'_>| {
        log.lock()
            .unwrap()
            .push((ctx.attempt(), ctx.previous_delay()));
        if ctx.error().message() == "overloaded" && ctx.attempt() < 4 {
            Decision::Retry(Duration::from_secs(3))
        } else {
            Decision::Stop("not overloaded")
        }
    };
    let mock = MockProvider::new();
    mock.always(
        A,
        MockReply::error(ErrorKind::Server).with_message("overloaded"),
    );
    mock.always(B, MockReply::error(ErrorKind::Server));
    let retry = RetryLayer::builder()
        .policy(policy)
        .build()
        .unwrap()
        .layer(mock.clone());

    let _ = retry.clone().oneshot(request(A)).await;
    assert_eq!(mock.call_count(A), 4);
    assert_eq!(gaps(&mock), [Duration::from_secs(3); 3]);
    let three = Some(Duration::from_secs(3));
    assert_eq!(
        *seen.lock().unwrap(),
        [(1, None), (2, three), (3, three), (4, three)]
    );

    let _ = retry.oneshot(request(B)).await;
    assert_eq!(mock.call_count(B), 1);
}

#[tokio::test(start_paused = true)]
async fn the_built_in_policy_can_be_used_as_a_custom_one() {
    let policy = ExponentialRetry::new(1).with_backoff(exact_backoff());
    let mock = MockProvider::new();
    mock.always(A, MockReply::error(ErrorKind::Connect));
    let _ = RetryLayer::builder()
        .policy(policy)
        .build()
        .unwrap()
        .layer(mock.clone())
        .oneshot(request(A))
        .await;
    assert_eq!(mock.call_count(A), 2);
}

#[test]
fn invalid_layer_settings_are_rejected_at_build_time() {
    let error = RetryLayer::builder()
        .max_retries_for("gpt-4o", 1)
        .backoff_for("azure/gpt 4o", Backoff::default())
        .build()
        .unwrap_err();
    assert_eq!(error.problems().len(), 2);
    assert!(error.to_string().contains("\"gpt-4o\""), "{error}");
    assert!(error.to_string().contains("\"azure/gpt 4o\""), "{error}");

    let error = RetryLayer::builder()
        .max_retries(3)
        .policy(|_: &RetryContext<'_>| Decision::Stop("never"))
        .build()
        .unwrap_err();
    assert!(error.to_string().contains("max_retries"), "{error}");

    let error = RetryBudget::new(Duration::from_secs(10), 1, -1.0).unwrap_err();
    assert!(error.to_string().contains("-1"), "{error}");
    let error = RetryBudget::new(Duration::from_millis(10), 1, 0.2).unwrap_err();
    assert!(error.to_string().contains("10ms"), "{error}");
}
