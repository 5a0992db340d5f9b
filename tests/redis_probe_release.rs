//! A half-open probe slot on Redis is never lost to a cancelled call: when
//! the admit (or the probe's outcome) times out, or its future is dropped
//! mid-flight, the slot is released and another replica probes at once,
//! not a whole lease (60 s) later.
//!
//! Real time against the real Redis on 127.0.0.1:6379; replica one talks to
//! it through a proxy that passes requests on but drops every reply, so
//! Redis acts and the caller never hears of it. Conditions are polled.

mod redis_support;

use std::future::Future;
use std::time::Duration;

use llm_fallback::layers::cooldown::{
    Admission, BreakerSettings, CooldownStore, Permit, PermitKind, RedisStore, Verdict,
};
use llm_fallback::store::RedisConnection;
use redis_support::{cleanup, client, connect, hget, unique_prefix, Mode, Proxy, REDIS};
use tokio::time::Instant;

const MODEL: &str = "azure/gpt-4o";
const OTHER: &str = "openai/gpt-4o";

/// Far below the 60 s lease: a slot that waits for its lease fails the test.
const PATIENCE: Duration = Duration::from_secs(5);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Polls `check` until it holds, for `PATIENCE` at most.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + PATIENCE;
    while !check().await {
        assert!(std::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(ms(10)).await;
    }
}

/// A replica that talks to Redis through `proxy` (no connection opened yet).
fn through(proxy: &Proxy, prefix: &str, budget: Duration) -> RedisStore {
    let connection = RedisConnection::builder(format!("redis://{}", proxy.addr))
        .prefix(prefix)
        .op_timeout(budget)
        .retry_interval(ms(100))
        .build()
        .unwrap();
    RedisStore::new(&connection)
}

/// Opens the breaker from `store` for 1 ms, and waits until it has expired
/// on the server's clock: the next admit takes the probe slot.
async fn half_open(store: &RedisStore, prefix: &str) {
    let Admission::Admit(permit) = store.admit(MODEL, false, Instant::now()).await else {
        panic!("a fresh breaker admits");
    };
    let trip = Verdict::Trip(Some(ms(1)));
    let settings = BreakerSettings::default();
    store
        .record(MODEL, permit, trip, &settings, Instant::now())
        .await;
    let key = key(prefix);
    eventually("the breaker's open time passes", || async {
        let until: i64 = hget(&key, "u").await.unwrap().parse().unwrap();
        server_ms().await > until
    })
    .await;
}

async fn server_ms() -> i64 {
    let mut conn = client().await;
    let (secs, micros): (i64, i64) = redis::cmd("TIME").query_async(&mut conn).await.unwrap();
    secs * 1000 + micros / 1000
}

fn key(prefix: &str) -> String {
    format!("{prefix}:cb:{MODEL}")
}

/// Whether `store` is granted the probe now (a refusal is dropped).
async fn probes(store: &RedisStore) -> Option<Permit> {
    match store.admit(MODEL, false, Instant::now()).await {
        Admission::Admit(permit) if permit.kind == PermitKind::Probe => Some(permit),
        _ => None,
    }
}

/// Replica one's connection is open (an operation on another model went
/// through), then every reply is dropped.
async fn muted(one: &RedisStore, proxy: &Proxy) {
    proxy.set(Mode::Muting);
    let opened = one.admit(OTHER, false, Instant::now()).await;
    assert!(matches!(opened, Admission::Admit(p) if p.kind == PermitKind::Normal));
    proxy.mute(true);
}

/// Whether either replica probes, after a call on another model (which
/// sends what replica one could not send while Redis was out of reach).
async fn recovered(one: &RedisStore, two: &RedisStore) -> bool {
    let _ = one.admit(OTHER, false, Instant::now()).await;
    probes(two).await.is_some()
}

#[tokio::test]
async fn a_probe_admit_dropped_mid_flight_frees_the_slot_for_every_replica() {
    let prefix = unique_prefix("probe-drop");
    let proxy = Proxy::start().await;
    // Budgets long enough that no operation times out: only the drop acts.
    let one = through(&proxy, &prefix, Duration::from_secs(30));
    let two = RedisStore::new(&connect(REDIS, &prefix, Duration::from_secs(1)).await);
    half_open(&two, &prefix).await;
    muted(&one, &proxy).await;

    let mut admit = one.admit(MODEL, false, Instant::now());
    let key = key(&prefix);
    let deadline = std::time::Instant::now() + PATIENCE;
    // Drive the admit until Redis has granted its slot.
    while hget(&key, "s").await.as_deref() != Some("p") {
        assert!(
            std::time::Instant::now() < deadline,
            "the admit never reached Redis"
        );
        tokio::select! {
            _ = &mut admit => panic!("the proxy drops every reply"),
            _ = tokio::time::sleep(ms(10)) => {}
        }
    }
    assert_eq!(probes(&two).await, None, "replica one holds the slot");

    // The release goes out on the same connection; Redis acts on it unheard.
    drop(admit);
    // Without it, replica two would wait the whole 60 s lease.
    eventually("replica two probes", || async {
        probes(&two).await.is_some()
    })
    .await;
    cleanup(&prefix).await;
}

#[tokio::test]
async fn a_probe_admit_that_times_out_frees_the_slot_for_every_replica() {
    let prefix = unique_prefix("probe-timeout");
    let proxy = Proxy::start().await;
    let one = through(&proxy, &prefix, ms(200));
    let two = RedisStore::new(&connect(REDIS, &prefix, Duration::from_secs(1)).await);
    half_open(&two, &prefix).await;
    muted(&one, &proxy).await;

    // No reply within the budget: replica one answers from its local view,
    // though Redis granted it the slot.
    let local = one.admit(MODEL, false, Instant::now()).await;
    assert!(matches!(local, Admission::Admit(p) if p.kind == PermitKind::Normal));
    assert_eq!(hget(&key(&prefix), "s").await.as_deref(), Some("p"));
    proxy.mute(false);

    eventually("replica two probes", || recovered(&one, &two)).await;
    cleanup(&prefix).await;
}

#[tokio::test]
async fn a_probe_whose_outcome_is_lost_in_an_outage_frees_the_slot_when_redis_returns() {
    let prefix = unique_prefix("probe-record");
    let proxy = Proxy::start().await;
    let one = through(&proxy, &prefix, ms(200));
    let two = RedisStore::new(&connect(REDIS, &prefix, Duration::from_secs(1)).await);
    half_open(&two, &prefix).await;
    let permit = probes(&one).await.expect("replica one probes");

    // Redis is unreachable from replica one when its probe ends: neither the
    // outcome nor the release gets through.
    proxy.set(Mode::Blackhole);
    let settings = BreakerSettings::default();
    one.record(MODEL, permit, Verdict::Success, &settings, Instant::now())
        .await;
    proxy.set(Mode::Forward);

    // Replica one sends the release once Redis answers it again; without it
    // the slot waits for its 60 s lease on every replica.
    eventually("replica two probes", || recovered(&one, &two)).await;
    cleanup(&prefix).await;
}
