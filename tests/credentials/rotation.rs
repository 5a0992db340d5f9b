//! Within one provider: rotation order, per-key cooldowns, tiers, weights, concurrency.

use std::time::Duration;

use futures_util::future::join_all;
use llm_fallback::layers::health::ForceAttempt;
use llm_fallback::mock::{MockServer, ServerReply};
use llm_fallback::providers::credentials::{Credentials, Key};
use llm_fallback::{ErrorKind, Providers, SharedRng};
use tokio::time::Instant;
use tower::ServiceExt;

use crate::waiting::{poll_until, skip};
use crate::*;

fn providers(credentials: Credentials<llm_fallback::providers::openai::OpenAi>) -> Providers {
    Providers::builder()
        .provider("openai", credentials)
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_request_moves_past_a_rate_limited_and_a_revoked_key_to_the_healthy_one() {
    let server = MockServer::start().await;
    script_abc(&server, MODEL);
    let keys = abc(&server, [0, 0, 0]).build().unwrap();

    let response = providers(keys.clone()).oneshot(request(ID)).await.unwrap();

    assert_eq!(response.text().as_deref(), Some("ok from gpt-4o-mini"));
    assert_eq!(response.model(), ID);
    assert_eq!(keys_called(&server), [KEY_A, KEY_B, KEY_C]);
    let calls = server.calls();
    assert_eq!(
        calls[0].header("authorization"),
        Some("Bearer sk-test-A-SECRET-0001")
    );
    assert_eq!(
        calls[2].header("authorization"),
        Some("Bearer sk-test-C-SECRET-0003")
    );
    assert_eq!(
        attempts(response.attempts()),
        [
            entry(ID, Some("a"), Some(ErrorKind::RateLimited)),
            entry(ID, Some("b"), Some(ErrorKind::Auth)),
            entry(ID, Some("c"), None),
        ]
    );
    assert!(!keys.is_available("a") && !keys.is_available("b"));
    assert!(keys.is_available("c"));
}

#[tokio::test]
async fn the_next_requests_go_straight_to_the_healthy_key_while_the_others_cool() {
    let server = MockServer::start().await;
    script_abc(&server, MODEL);
    let keys = abc(&server, [0, 0, 0]).build().unwrap();
    let stack = providers(keys.clone());
    stack.clone().oneshot(request(ID)).await.unwrap();
    let a_back = keys.cooling_until("a").unwrap();
    let b_back = keys.cooling_until("b").unwrap();

    for _ in 0..3 {
        let response = stack.clone().oneshot(request(ID)).await.unwrap();
        assert_eq!(attempts(response.attempts()), [entry(ID, Some("c"), None)]);
    }

    assert_eq!(
        keys_called(&server),
        [KEY_A, KEY_B, KEY_C, KEY_C, KEY_C, KEY_C]
    );
    assert!(
        Instant::now() < a_back.min(b_back),
        "checked while both cool"
    );
}

#[tokio::test]
async fn a_rate_limited_key_is_tried_again_once_its_retry_after_has_passed() {
    let server = MockServer::start().await;
    server.script_for_key(
        MODEL,
        KEY_A,
        [ServerReply::error(429, "rate_limit_exceeded", "slow down")
            .with_retry_after(Duration::from_secs(1800))],
    );
    server.always_for_key(MODEL, KEY_B, ServerReply::status(401));
    // C is the only tier 1 key: each request's order is then fixed.
    let keys = abc(&server, [0, 0, 1])
        .rotate_on(ErrorKind::Auth, Duration::from_secs(86_400))
        .max_retry_after(Duration::from_secs(3600))
        .build()
        .unwrap();
    let stack = providers(keys.clone());

    stack.clone().oneshot(request(ID)).await.unwrap();
    let a_back = keys.cooling_until("a").unwrap();
    assert!(a_back >= Instant::now() + Duration::from_secs(1700));
    let served = stack.clone().oneshot(request(ID)).await.unwrap();
    assert_eq!(attempts(served.attempts()), [entry(ID, Some("c"), None)]);

    skip(a_back.saturating_duration_since(Instant::now())).await;
    let served = stack.clone().oneshot(request(ID)).await.unwrap();

    assert_eq!(attempts(served.attempts()), [entry(ID, Some("a"), None)]);
    assert_eq!(keys_called(&server), [KEY_A, KEY_B, KEY_C, KEY_C, KEY_A]);
    assert!(
        keys.is_available("a"),
        "the probe's success closes its breaker"
    );
    assert!(!keys.is_available("b"));
}

#[tokio::test]
async fn tier_1_keys_are_used_only_when_no_tier_0_key_is_available() {
    let server = MockServer::start().await;
    let keys = abc(&server, [0, 0, 1]).build().unwrap();
    let stack = providers(keys.clone());
    for _ in 0..10 {
        stack.clone().oneshot(request(ID)).await.unwrap();
    }
    assert_eq!(server.key_count(KEY_C), 0);
    assert_eq!((server.key_count(KEY_A), server.key_count(KEY_B)), (5, 5));

    script_abc(&server, MODEL);
    let response = stack.clone().oneshot(request(ID)).await.unwrap();
    let used: Vec<_> = response
        .attempts()
        .iter()
        .map(|a| a.key.clone().unwrap())
        .collect();
    assert_eq!(used.last().map(String::as_str), Some("c"));
    assert_eq!(used.len(), 3, "both tier 0 keys first: {used:?}");
    assert_eq!(server.key_count(KEY_C), 1);
}

#[tokio::test]
async fn a_failure_that_is_not_the_keys_is_returned_without_trying_another_key() {
    let server = MockServer::start().await;
    server.always(MODEL, ServerReply::status(503));
    let keys = abc(&server, [0, 0, 0]).build().unwrap();

    let error = providers(keys.clone())
        .oneshot(request(ID))
        .await
        .unwrap_err();

    assert_eq!(error.kind(), ErrorKind::Server);
    assert_eq!(keys_called(&server), [KEY_A]);
    assert!(
        keys.is_available("a"),
        "a 503 is the provider's, not the key's"
    );
    assert_eq!(
        attempts(error.attempts()),
        [entry(ID, Some("a"), Some(ErrorKind::Server))]
    );
}

#[tokio::test]
async fn out_of_quota_keys_rest_longer_than_rate_limited_ones() {
    let server = MockServer::start().await;
    server.always_for_key(
        MODEL,
        KEY_A,
        ServerReply::error(429, "insufficient_quota", "no credit"),
    );
    server.always_for_key(
        MODEL,
        KEY_B,
        ServerReply::error(429, "rate_limit_exceeded", "slow"),
    );
    let keys = abc(&server, [0, 0, 0]).build().unwrap();
    let start = Instant::now();

    providers(keys.clone()).oneshot(request(ID)).await.unwrap();

    let rest = |label| keys.cooling_until(label).unwrap() - start;
    assert!(rest("a") >= Duration::from_secs(300), "{:?}", rest("a"));
    assert!(rest("b") < Duration::from_secs(60), "{:?}", rest("b"));
}

#[tokio::test]
async fn with_every_key_cooling_the_call_fails_fast_unless_forced() {
    let server = MockServer::start().await;
    script_abc(&server, MODEL);
    server.always_for_key(MODEL, KEY_C, ServerReply::status(403));
    let keys = abc(&server, [0, 0, 0]).build().unwrap();
    let stack = providers(keys.clone());
    let first = stack.clone().oneshot(request(ID)).await.unwrap_err();
    assert_eq!(
        first.kind(),
        ErrorKind::Auth,
        "the last key's kind: {first}"
    );
    assert_eq!(server.calls().len(), 3);

    let cooling = stack.clone().oneshot(request(ID)).await.unwrap_err();
    assert_eq!(cooling.kind(), ErrorKind::CoolingDown);
    assert_eq!(server.calls().len(), 3, "no upstream call");
    let skipped = &cooling.attempts()[0];
    assert!(!skipped.upstream && skipped.key.is_none());

    let mut forced = request(ID);
    forced.extensions_mut().insert(ForceAttempt);
    let error = stack.clone().oneshot(forced).await.unwrap_err();
    assert_eq!(
        keys_called(&server)[3],
        KEY_A,
        "the key back first: the rate-limited one"
    );
    assert_eq!(error.kind(), ErrorKind::RateLimited);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_rotate_independently() {
    let server = MockServer::start().await;
    server.always_for_key(MODEL, KEY_A, ServerReply::status(429));
    let keys = abc(&server, [0, 0, 1]).build().unwrap();
    let stack = providers(keys.clone());

    let calls = (0..50).map(|_| tokio::spawn(stack.clone().oneshot(request(ID))));
    let results = join_all(calls).await;

    for result in results {
        let response = result.unwrap().unwrap();
        let used: Vec<_> = response
            .attempts()
            .iter()
            .map(|a| a.key.clone().unwrap())
            .collect();
        assert!(
            used == ["b"] || used == ["a", "b"],
            "each request its own walk: {used:?}"
        );
    }
    assert_eq!(
        server.key_count(KEY_C),
        0,
        "no request skipped past a healthy key"
    );
    assert_eq!(server.key_count(KEY_B), 50);
    assert!(!keys.is_available("a"));
}

#[tokio::test]
async fn weighted_keys_share_the_calls_by_weight() {
    let server = MockServer::start().await;
    let keys = Credentials::builder("openai")
        .key(Key::new("big", openai(&server, KEY_A)).weight(3))
        .key(Key::new("small", openai(&server, KEY_B)))
        .rng(SharedRng::seeded(42))
        .build()
        .unwrap();
    let stack = providers(keys);

    for _ in 0..400 {
        stack.clone().oneshot(request(ID)).await.unwrap();
    }

    let big = server.key_count(KEY_A);
    assert_eq!(big + server.key_count(KEY_B), 400);
    assert!((260..=340).contains(&big), "3:1 of 400 calls, got {big}");
}

#[tokio::test]
async fn a_probe_dropped_mid_call_frees_the_key_for_the_next_request() {
    let server = MockServer::start().await;
    let limited = ServerReply::status(429).with_retry_after(Duration::from_secs(60));
    server.script_for_key(MODEL, KEY_A, [limited, ServerReply::hang()]);
    let keys = abc(&server, [0, 1, 1]).build().unwrap();
    let stack = providers(keys.clone());
    stack.clone().oneshot(request(ID)).await.unwrap();
    skip(Duration::from_secs(61)).await;

    // The probe on A reaches the server, which never answers; it is dropped.
    let probe = tokio::spawn(stack.clone().oneshot(request(ID)));
    poll_until("the probe reached A", async || server.key_count(KEY_A) == 2).await;
    probe.abort();
    assert!(probe.await.unwrap_err().is_cancelled(), "still hanging");
    let served = stack.oneshot(request(ID)).await.unwrap();

    assert_eq!(attempts(served.attempts()), [entry(ID, Some("a"), None)]);
    assert_eq!(server.key_count(KEY_A), 3);
}
