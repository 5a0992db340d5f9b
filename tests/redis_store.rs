//! RedisStore against the real Redis on 127.0.0.1:6379: two stacks in one
//! process share breakers, the half-open probe is exclusive across them, keys
//! expire, and an unreachable or vanishing Redis never fails a request.
//!
//! Real time: the store's budget runs against a real server (paused time
//! would fire every timeout while the runtime waits for Redis).

mod redis_support;

use std::sync::Arc;
use std::time::Duration;

use llm_fallback::layers::cooldown::{CooldownLayer, RedisStore};
use llm_fallback::layers::health::{AllCooling, Health};
use llm_fallback::mock::{MockProvider, MockReply};
use llm_fallback::store::RedisConnection;
use llm_fallback::{
    ChatError, ChatRequest, ChatResponse, ErrorKind, Message, SharedRng, WeightedBalanceLayer,
};
use redis_support::{
    breaker_admits, cleanup, connect, hget, keys, poll_until, pttl, unique_prefix, Mode, Proxy,
    REDIS,
};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tower::util::BoxCloneSyncService;
use tower::{ServiceBuilder, ServiceExt};

const AZURE: &str = "azure/gpt-4o";
const OPENAI: &str = "openai/gpt-4o";

type Svc = BoxCloneSyncService<ChatRequest, ChatResponse, ChatError>;

fn request(model: &str) -> ChatRequest {
    ChatRequest::new(model, [Message::user("hello")])
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// One gateway replica: balance over both models, then a cooldown on the
/// shared store, then its own upstream.
struct Replica {
    service: Svc,
    health: Health,
    mock: MockProvider,
}

fn replica(connection: &RedisConnection, cooldown: Duration) -> Replica {
    let store = RedisStore::builder(connection)
        .key_ttl(Duration::from_secs(5))
        .build()
        .unwrap();
    let layer = CooldownLayer::builder()
        .consecutive_failures(1)
        .cooldown(cooldown)
        .without_failure_ratio()
        .store(Arc::new(store))
        .build()
        .unwrap();
    let health = layer.health();
    let mock = MockProvider::new();
    let balance = WeightedBalanceLayer::builder()
        .route("gpt-4o", [(AZURE, 1.0), (OPENAI, 1.0)])
        .rng(SharedRng::seeded(3))
        .health(health.clone())
        .build()
        .unwrap();
    let service = ServiceBuilder::new()
        .layer(balance)
        .layer(layer)
        .service(mock.clone());
    Replica {
        service: Svc::new(service),
        health,
        mock,
    }
}

async fn call(service: &Svc, model: &str) -> Result<ChatResponse, ChatError> {
    service.clone().oneshot(request(model)).await
}

#[tokio::test]
async fn a_breaker_tripped_by_one_replica_makes_the_other_skip_the_model_without_calling_it() {
    let prefix = unique_prefix("trip");
    let one = replica(
        &connect(REDIS, &prefix, ms(1000)).await,
        Duration::from_secs(30),
    );
    let two = replica(
        &connect(REDIS, &prefix, ms(1000)).await,
        Duration::from_secs(30),
    );
    one.mock.always(
        AZURE,
        MockReply::error(ErrorKind::RateLimited).with_retry_after(Duration::from_secs(20)),
    );

    // Replica one names azure: the 429 trips it, openai serves.
    let served = call(&one.service, AZURE).await.unwrap();
    assert_eq!(served.model(), OPENAI);
    assert!(!one.health.is_available(AZURE));
    // Replica two has not seen anything yet.
    assert!(two.health.is_available(AZURE));

    // It asks Redis before calling azure, is refused, and openai serves.
    for _ in 0..3 {
        let served = call(&two.service, AZURE).await.unwrap();
        assert_eq!(served.model(), OPENAI);
        let skipped = &served.attempts()[0];
        assert_eq!((skipped.model.as_str(), skipped.upstream), (AZURE, false));
    }
    assert_eq!(
        two.mock.call_count(AZURE),
        0,
        "azure was never called by replica two"
    );
    assert_eq!(two.mock.call_count(OPENAI), 3);
    // Its local view now knows, for the balance layer's draws.
    let until = two
        .health
        .cooling_until(AZURE)
        .expect("cooling in replica two's view");
    let left = until - Instant::now();
    assert!(
        left > Duration::from_secs(18) && left <= Duration::from_secs(20),
        "{left:?}"
    );

    cleanup(&prefix).await;
}

#[tokio::test]
async fn a_half_open_breaker_admits_exactly_one_probe_across_both_replicas() {
    let prefix = unique_prefix("probe");
    let one = replica(&connect(REDIS, &prefix, ms(1000)).await, ms(300));
    let two = replica(&connect(REDIS, &prefix, ms(1000)).await, ms(300));
    one.mock
        .script(AZURE, [MockReply::error(ErrorKind::Server)]);
    assert_eq!(call(&one.service, AZURE).await.unwrap().model(), OPENAI);
    let key = format!("{prefix}:cb:{AZURE}");
    poll_until(
        "the cooldown is over, in Redis and in replica one's view",
        async || breaker_admits(&key).await && one.health.is_available(AZURE),
    )
    .await;

    // The cooldown is over: 20 concurrent calls naming azure, 10 per
    // replica; the probe takes 200 ms.
    for replica in [&one, &two] {
        replica
            .mock
            .always(AZURE, MockReply::text("probe ok").after(ms(200)));
    }
    let mut calls = JoinSet::new();
    for i in 0..20 {
        let service = if i % 2 == 0 { &one } else { &two }.service.clone();
        calls.spawn(async move { service.oneshot(request(AZURE)).await });
    }
    let mut served_by_azure = 0;
    while let Some(result) = calls.join_next().await {
        if result.unwrap().unwrap().model() == AZURE {
            served_by_azure += 1;
        }
    }
    let upstream = one.mock.call_count(AZURE) + two.mock.call_count(AZURE);
    assert_eq!(upstream, 2, "the tripping call and one probe");
    assert_eq!(served_by_azure, 1, "only the probe reached azure");

    // The probe closed the breaker for both (replica two's local view
    // expected the probe to take up to a cooldown: it draws azure after that).
    assert_eq!(
        hget(&key, "s").await.as_deref(),
        Some("c"),
        "closed in Redis"
    );
    poll_until("both views see azure available", async || {
        one.health.is_available(AZURE) && two.health.is_available(AZURE)
    })
    .await;
    assert_eq!(call(&two.service, AZURE).await.unwrap().model(), AZURE);
    assert_eq!(call(&one.service, AZURE).await.unwrap().model(), AZURE);

    cleanup(&prefix).await;
}

#[tokio::test]
async fn every_key_carries_a_ttl_and_expires_once_its_state_is_over() {
    let prefix = unique_prefix("ttl");
    let connection = connect(REDIS, &prefix, ms(1000)).await;
    let store = RedisStore::builder(&connection)
        .key_ttl(ms(700))
        .build()
        .unwrap();
    let layer = CooldownLayer::builder()
        .cooldown(ms(500))
        .store(Arc::new(store))
        .build()
        .unwrap();
    let mock = MockProvider::new();
    mock.script(AZURE, [MockReply::error(ErrorKind::NotFound)]);
    let service = ServiceBuilder::new().layer(layer).service(mock.clone());

    // A success (counted in the failure-ratio window) and a trip.
    service.clone().oneshot(request(OPENAI)).await.unwrap();
    service.clone().oneshot(request(AZURE)).await.unwrap_err();
    // The success is written in the background.
    poll_until("both keys written", async || keys(&prefix).await.len() == 2).await;
    let mut found = keys(&prefix).await;
    found.sort();
    assert_eq!(
        found,
        [
            format!("{prefix}:cb:{AZURE}"),
            format!("{prefix}:cb:{OPENAI}")
        ]
    );
    let open = pttl(&found[0]).await;
    assert!(open > 700 && open <= 1200, "open time + key ttl: {open} ms");
    let closed = pttl(&found[1]).await;
    // The failure-ratio window (30 s by default) outlives a shorter key TTL.
    assert!(closed > 29_000 && closed <= 30_000, "window: {closed} ms");
    assert_eq!(hget(&found[0], "s").await.as_deref(), Some("o"));

    poll_until("the open breaker's key expired", async || {
        pttl(&found[0]).await == -2
    })
    .await;

    cleanup(&prefix).await;
}

#[tokio::test]
async fn a_dead_redis_never_fails_a_request_and_the_local_view_still_trips() {
    let budget = ms(20);
    let connection = RedisConnection::builder("redis://127.0.0.1:1")
        .op_timeout(budget)
        .build()
        .expect("an unreachable server is not a config error");
    // Direct calls fail fast while cooling (by default they would get one forced call).
    let layer = CooldownLayer::builder()
        .when_all_cooling(AllCooling::FailFast)
        .cooldown(Duration::from_secs(30))
        .store(Arc::new(RedisStore::new(&connection)))
        .build()
        .unwrap();
    let health = layer.health();
    let mock = MockProvider::new();
    let service = ServiceBuilder::new().layer(layer).service(mock.clone());

    let mut slowest = Duration::ZERO;
    for _ in 0..50 {
        let start = std::time::Instant::now();
        service.clone().oneshot(request(OPENAI)).await.unwrap();
        slowest = slowest.max(start.elapsed());
    }
    assert!(slowest < budget * 3, "slowest request took {slowest:?}");
    assert_eq!(mock.call_count(OPENAI), 50);

    // The breaker still works, in this process.
    mock.script(AZURE, [MockReply::error(ErrorKind::NotFound)]);
    service.clone().oneshot(request(AZURE)).await.unwrap_err();
    let refused = service.clone().oneshot(request(AZURE)).await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::CoolingDown);
    assert_eq!(mock.call_count(AZURE), 1);
    assert!(!health.is_available(AZURE));
}

#[tokio::test]
async fn redis_vanishing_mid_run_costs_no_request_and_the_local_trips_are_pushed_when_it_returns() {
    let prefix = unique_prefix("outage");
    let proxy = Proxy::start().await;
    let budget = ms(50);
    let connection = connect(&proxy.addr.to_string(), &prefix, budget).await;
    // Direct calls fail fast while cooling (by default they would get one forced call).
    let layer = CooldownLayer::builder()
        .when_all_cooling(AllCooling::FailFast)
        .cooldown(Duration::from_secs(30))
        .store(Arc::new(RedisStore::new(&connection)))
        .build()
        .unwrap();
    let mock = MockProvider::new();
    let service = ServiceBuilder::new().layer(layer).service(mock.clone());
    service.clone().oneshot(request(OPENAI)).await.unwrap();
    poll_until("the success went to Redis", async || {
        keys(&prefix).await.len() == 1
    })
    .await;

    // Redis stops answering: connections hang. Requests go on until the
    // store has tried to reconnect (into the hang) twice.
    proxy.set(Mode::Blackhole);
    let mut slowest = Duration::ZERO;
    let mut requests = 0;
    poll_until("two reconnections into the hung Redis", async || {
        let start = std::time::Instant::now();
        service.clone().oneshot(request(OPENAI)).await.unwrap();
        slowest = slowest.max(start.elapsed());
        requests += 1;
        proxy.blackholed() >= 2 && requests >= 30
    })
    .await;
    assert!(slowest < budget * 3, "slowest request took {slowest:?}");
    // Azure trips in the local view meanwhile.
    mock.script(AZURE, [MockReply::error(ErrorKind::NotFound)]);
    service.clone().oneshot(request(AZURE)).await.unwrap_err();
    let refused = service.clone().oneshot(request(AZURE)).await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::CoolingDown);
    assert_eq!(hget(&format!("{prefix}:cb:{AZURE}"), "s").await, None);

    // Redis is back: the next operation after the retry interval finds it,
    // and the breaker opened meanwhile is pushed for every replica to see.
    proxy.set(Mode::Forward);
    poll_until("the breaker opened meanwhile is pushed", async || {
        service.clone().oneshot(request(OPENAI)).await.unwrap();
        hget(&format!("{prefix}:cb:{AZURE}"), "s").await.as_deref() == Some("o")
    })
    .await;
    let other = replica(
        &connect(REDIS, &prefix, ms(1000)).await,
        Duration::from_secs(30),
    );
    assert_eq!(call(&other.service, AZURE).await.unwrap().model(), OPENAI);
    assert_eq!(other.mock.call_count(AZURE), 0);
    assert_eq!(mock.call_count(AZURE), 1);

    cleanup(&prefix).await;
}
