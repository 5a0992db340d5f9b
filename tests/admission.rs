//! Admission instead of a hard skip: scattered faults are admitted, a dead
//! provider is shed, a probe or forced call is one attempt, a call's upstream
//! calls are capped, and the attempt log counts calls and skips apart.
//!
//! Paused time, scripted `MockProvider`, seeded randomness.

use std::time::Duration;

use llm_fallback::chat::{AttemptLog, AttemptSummary};
use llm_fallback::layers::health::AllCooling;
use llm_fallback::layers::retry::Backoff;
use llm_fallback::mock::{MockProvider, MockReply};
use llm_fallback::{
    BoxChatService, ChatError, ChatRequest, ChatResponse, CooldownLayer, ErrorKind, Message,
    ProviderFallbackLayer, RetryLayer, RouteOptions, SharedRng,
};
use tower::{ServiceBuilder, ServiceExt};

const A: &str = "a/model";
const B: &str = "b/model";
const C: &str = "c/model";

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn request(model: &str) -> ChatRequest {
    ChatRequest::new(model, [Message::user("hi")])
}

/// Retries up to `max` times, 10 ms apart, no budget.
fn retry(max: u32) -> RetryLayer {
    RetryLayer::builder()
        .max_retries(max)
        .backoff(
            Backoff::builder()
                .base(Duration::from_millis(10))
                .build()
                .unwrap(),
        )
        .no_budget()
        .rng(SharedRng::seeded(7))
        .build()
        .unwrap()
}

/// Fallback (optional) → Cooldown → Retry → mock.
fn stack(
    fallback: Option<ProviderFallbackLayer>,
    cooldown: &CooldownLayer,
    retries: u32,
    mock: &MockProvider,
) -> BoxChatService {
    BoxChatService::new(
        ServiceBuilder::new()
            .option_layer(fallback)
            .layer(cooldown.clone())
            .layer(retry(retries))
            .service(mock.clone()),
    )
}

async fn call(service: &BoxChatService, model: &str) -> Result<ChatResponse, ChatError> {
    service.clone().oneshot(request(model)).await
}

/// Fails one call in seven (14 %), at fixed places.
fn scattered(n: usize) -> Vec<MockReply> {
    (0..n)
        .map(|i| match i % 7 {
            3 => MockReply::error(ErrorKind::Server),
            _ => MockReply::text("ok"),
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn scattered_faults_are_admitted_and_a_dead_provider_is_shed() {
    let mock = MockProvider::new();
    mock.script(A, scattered(200));
    mock.always(B, MockReply::error(ErrorKind::Server));
    // The throttle alone: no breaker rule trips.
    let cooldown = CooldownLayer::builder()
        .consecutive_failures(0)
        .without_failure_ratio()
        .rng(SharedRng::seeded(3))
        .build()
        .unwrap();
    let service = stack(None, &cooldown, 0, &mock);

    let (mut a_ok, mut b_shed) = (0, 0);
    for _ in 0..200 {
        a_ok += usize::from(call(&service, A).await.is_ok());
        match call(&service, B).await {
            Err(e) if e.kind() == ErrorKind::CoolingDown => {
                assert!(e.retry_after().is_some(), "a shed call says when to retry");
                assert!(e.message().contains("adaptive throttling"), "{e}");
                b_shed += 1;
            }
            other => assert_eq!(other.unwrap_err().kind(), ErrorKind::Server),
        }
        tokio::time::advance(Duration::from_millis(10)).await;
    }
    // Every call to the flaky model went upstream; it answered 6 in 7.
    assert_eq!(mock.call_count(A), 200);
    assert_eq!(a_ok, 200 - 200 / 7 - 1);
    // The dead one saw the first 10 calls, then a trickle: ln(200/10) ≈ 3.
    let b_calls = mock.call_count(B);
    assert!(
        (10..=20).contains(&b_calls),
        "dead model called {b_calls} times"
    );
    assert_eq!(b_calls + b_shed, 200);
}

#[tokio::test(start_paused = true)]
async fn a_dead_provider_in_a_route_gets_a_few_probes_while_the_others_serve() {
    let mock = MockProvider::new();
    mock.always(A, MockReply::error(ErrorKind::Server));
    mock.script(B, scattered(400));
    mock.script(C, scattered(400));
    let cooldown = CooldownLayer::builder()
        .cooldown(secs(5))
        .rng(SharedRng::seeded(3))
        .build()
        .unwrap();
    let fallback = ProviderFallbackLayer::builder()
        .named_group("route", [A, B, C])
        .health(cooldown.health())
        .build()
        .unwrap();
    let service = stack(Some(fallback), &cooldown, 1, &mock);

    let mut served = 0;
    for _ in 0..300 {
        served += usize::from(call(&service, "route").await.is_ok());
        tokio::time::advance(Duration::from_millis(50)).await;
    }
    assert_eq!(served, 300, "scattered faults on B and C cost nothing");
    // 15 s: 5 calls (with their retries) trip A, then one probe per 5 s
    // cooldown, each a single attempt.
    let a_calls = mock.call_count(A);
    assert!(a_calls <= 14, "the dead model was called {a_calls} times");
}

#[tokio::test(start_paused = true)]
async fn a_half_open_probe_is_one_attempt_never_retried() {
    let mock = MockProvider::new();
    mock.always(A, MockReply::error(ErrorKind::Server));
    let cooldown = CooldownLayer::builder()
        .consecutive_failures(1)
        .cooldown(secs(5))
        .when_all_cooling(AllCooling::FailFast)
        .build()
        .unwrap();
    let service = stack(None, &cooldown, 2, &mock);

    // A closed breaker: the call and its two retries.
    assert_eq!(
        call(&service, A).await.unwrap_err().kind(),
        ErrorKind::Server
    );
    assert_eq!(mock.call_count(A), 3);
    tokio::time::advance(secs(5)).await;

    // Half-open: the probe fails once and is not retried.
    let probe = call(&service, A).await.unwrap_err();
    assert_eq!(probe.kind(), ErrorKind::Server);
    assert_eq!(mock.call_count(A), 4);
    assert_eq!(probe.attempts().len(), 1);
    assert!(
        !cooldown.health().is_available(A),
        "the failed probe reopened it"
    );
}

#[tokio::test(start_paused = true)]
async fn a_forced_call_is_one_attempt_never_retried() {
    let mock = MockProvider::new();
    mock.always(A, MockReply::error(ErrorKind::Server));
    let cooldown = CooldownLayer::builder()
        .consecutive_failures(1)
        .cooldown(secs(30))
        .build()
        .unwrap();
    let service = stack(None, &cooldown, 2, &mock);
    let _ = call(&service, A).await;
    assert_eq!(mock.call_count(A), 3);

    // Open, and requested directly: one forced call (`TryEarliest`), no retry.
    let forced = call(&service, A).await.unwrap_err();
    assert_eq!(forced.kind(), ErrorKind::Server);
    assert_eq!(mock.call_count(A), 4);
}

#[tokio::test(start_paused = true)]
async fn a_call_makes_at_most_four_upstream_calls_by_default() {
    let mock = MockProvider::new();
    for model in [A, B, C] {
        mock.always(model, MockReply::error(ErrorKind::Server));
    }
    let cooldown = CooldownLayer::builder().build().unwrap();
    let fallback = ProviderFallbackLayer::builder()
        .named_group("route", [A, B, C])
        .health(cooldown.health())
        .build()
        .unwrap();
    let service = stack(Some(fallback), &cooldown, 2, &mock);

    let e = call(&service, "route").await.unwrap_err();
    // Three retries of A and one of B: nine without the cap.
    assert_eq!(mock.called_models(), [A, A, A, B]);
    assert_eq!(e.kind(), ErrorKind::Server);
    assert_eq!(AttemptSummary::of(e.attempts()).upstream_calls, 4);

    // A tighter cap, in the builder.
    mock.clear_calls();
    let fallback = ProviderFallbackLayer::builder()
        .named_group("route", [A, B, C])
        .options(RouteOptions::new().max_upstream_calls(2))
        .build()
        .unwrap();
    let service = stack(Some(fallback), &cooldown, 0, &mock);
    let _ = call(&service, "route").await;
    assert_eq!(mock.called_models(), [A, B]);
}

#[tokio::test(start_paused = true)]
async fn the_attempt_log_counts_skips_apart_from_upstream_calls() {
    let mock = MockProvider::new();
    mock.script(A, [MockReply::error(ErrorKind::NotFound)]);
    mock.always(B, MockReply::error(ErrorKind::Auth));
    let cooldown = CooldownLayer::builder()
        .when_all_cooling(AllCooling::FailFast)
        .build()
        .unwrap();
    let fallback = ProviderFallbackLayer::builder()
        .named_group("route", [A, B])
        .health(cooldown.health())
        .build()
        .unwrap();
    let service = stack(Some(fallback), &cooldown, 1, &mock);
    // A 404 trips A at once; B's 401 is not retried.
    let _ = call(&service, "route").await;
    mock.clear_calls();

    let mut request = request("route");
    let log = AttemptLog::of(&mut request);
    let e = service.clone().oneshot(request).await.unwrap_err();
    assert_eq!(mock.called_models(), [B]);
    assert_eq!(
        e.to_string(),
        "all 2 candidates failed: a/model: cooling_down (skipped); \
         b/model: 401 Unauthorized (1 call)"
    );
    assert_eq!((log.upstream_calls(), log.skips()), (1, 1));
    let summary = AttemptSummary::of(e.attempts());
    assert_eq!(
        (summary.upstream_calls, summary.skips, summary.models_called),
        (1, 1, 1)
    );
}

/// A healthy model with long answers, under a burst of new calls: calls in
/// flight say nothing against it, so none is shed (they were, when a call
/// counted at its start: a thousand streams opening at once, or 20 s
/// answers in a 30 s window, looked like a model that answers nothing).
#[tokio::test(start_paused = true)]
async fn a_burst_of_slow_calls_to_a_healthy_model_is_never_shed() {
    let mock = MockProvider::new();
    mock.always(A, MockReply::text("fine").after(secs(20)));
    let cooldown = CooldownLayer::builder()
        .rng(SharedRng::seeded(5))
        .build()
        .unwrap();
    let service = stack(None, &cooldown, 0, &mock);

    // 500 calls start within 25 s, most while the first ones are still running.
    let mut calls = Vec::new();
    for _ in 0..500 {
        let service = service.clone();
        calls.push(tokio::spawn(async move { call(&service, A).await }));
        tokio::time::advance(Duration::from_millis(50)).await;
    }
    for handle in calls {
        let result = handle.await.unwrap();
        assert!(result.is_ok(), "{:?}", result.err());
    }
    assert_eq!(mock.call_count(A), 500);
}
