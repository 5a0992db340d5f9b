//! Usage-aware routing: limits skip full deployments, the strategies beside
//! the weighted draw, tokens estimated then settled; and limits shared by two
//! replicas over the real Redis.
//!
//! In-memory tests run on paused time; the Redis ones on real time.

mod redis_support;

use std::sync::Arc;
use std::time::Duration;

use llm_fallback::layers::balance::{BalanceConfig, RoutingStrategy};
use llm_fallback::layers::limit::{
    InMemoryUsage, LimitBuilder, LimitConfig, Limits, RedisUsage, UsageStore,
};
use llm_fallback::mock::{MockProvider, MockReply};
use llm_fallback::settings::Scope;
use llm_fallback::{
    BalanceBuilder, ChatError, ChatRequest, ChatResponse, ErrorKind, LimitLayer, Message,
    SharedRng, WeightedBalanceLayer,
};
use redis_support::{
    cleanup, connect, hget, keys, poll_until, pttl, unique_prefix, within_one_minute, REDIS,
};
use tokio::task::JoinSet;
use tower::util::BoxCloneSyncService;
use tower::{ServiceBuilder, ServiceExt};

const A: &str = "azure/gpt-4o";
const B: &str = "openai/gpt-4o";
const C: &str = "anthropic/claude-3-5-sonnet-20240620";

type Svc = BoxCloneSyncService<ChatRequest, ChatResponse, ChatError>;

fn request(model: &str) -> ChatRequest {
    ChatRequest::new(model, [Message::user("hello")])
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn balance(models: &[(&str, f64)]) -> BalanceBuilder {
    WeightedBalanceLayer::builder()
        .route("gpt-4o", models.iter().map(|(m, w)| (*m, *w)))
        .rng(SharedRng::seeded(11))
}

fn service(builder: BalanceBuilder, mock: &MockProvider) -> Svc {
    let layer = builder.build().unwrap();
    Svc::new(ServiceBuilder::new().layer(layer).service(mock.clone()))
}

fn limits() -> LimitBuilder {
    LimitLayer::builder()
}

/// The balance reading the usage of the limit layer right below it.
fn limited(builder: BalanceBuilder, limits: LimitBuilder, mock: &MockProvider) -> Svc {
    let limit = limits.build().unwrap();
    let balance = builder.usage(limit.usage()).build().unwrap();
    Svc::new(
        ServiceBuilder::new()
            .layer(balance)
            .layer(limit)
            .service(mock.clone()),
    )
}

async fn call(service: &Svc, request: ChatRequest) -> Result<ChatResponse, ChatError> {
    service.clone().oneshot(request).await
}

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
