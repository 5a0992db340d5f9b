//! What sharing state on Redis adds per request: the happy path through
//! Cooldown over the instant leaf with the in-memory store and with the Redis
//! store (127.0.0.1:6379, one round trip per call), and a balance layer over
//! a limit layer whose rpm limit is counted on Redis (one more). Needs a
//! running Redis.
//! Results: docs/PERFORMANCE.md.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use llm_fallback::layers::cooldown::{CooldownLayer, RedisStore};
use llm_fallback::layers::limit::{LimitLayer, Limits, RedisUsage};
use llm_fallback::store::RedisConnection;
use llm_fallback::{ChatRequest, WeightedBalanceLayer};
use tower::{ServiceBuilder, ServiceExt};

mod common;
use common::{request, InstantLeaf, Svc};

/// Mean time per request over `iters` sequential calls.
fn run(rt: &tokio::runtime::Runtime, svc: &Svc, req: &ChatRequest, iters: u64) -> Duration {
    rt.block_on(async {
        let start = Instant::now();
        for _ in 0..iters {
            let response = svc.clone().oneshot(req.clone()).await;
            std::hint::black_box(response.expect("bench request failed"));
        }
        start.elapsed()
    })
}

fn redis_store(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let prefix = format!("llmfb-bench:{}", std::process::id());
    // A generous budget: on a busy machine a 5 ms hiccup would switch the
    // store to its local view for a second and measure that instead.
    let redis = RedisConnection::builder("redis://127.0.0.1:6379")
        .prefix(prefix)
        .op_timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    rt.block_on(redis.ping(Duration::from_secs(2)))
        .expect("this benchmark needs Redis on 127.0.0.1:6379");

    let memory = Svc::new(
        ServiceBuilder::new()
            .layer(CooldownLayer::new())
            .service(InstantLeaf::new()),
    );
    let on_redis = CooldownLayer::builder()
        .store(Arc::new(RedisStore::new(&redis)))
        .build()
        .unwrap();
    let shared = Svc::new(
        ServiceBuilder::new()
            .layer(on_redis.clone())
            .service(InstantLeaf::new()),
    );
    let limit = LimitLayer::builder()
        .limits(
            "azure/gpt-4o-mini",
            Limits::default().with_rpm(u64::MAX / 2),
        )
        .store(Arc::new(RedisUsage::new(&redis)))
        .build()
        .unwrap();
    let limited = WeightedBalanceLayer::builder()
        .route("gpt-4o-mini", [("azure/gpt-4o-mini", 1.0)])
        .usage(limit.usage())
        .health(on_redis.health())
        .build()
        .unwrap();
    let both = Svc::new(
        ServiceBuilder::new()
            .layer(limited)
            .layer(limit)
            .layer(on_redis)
            .service(InstantLeaf::new()),
    );

    let req = request("azure/gpt-4o-mini", 1 << 10);
    let mut group = c.benchmark_group("redis_store");
    group.bench_function("cooldown_in_memory", |b| {
        b.iter_custom(|n| run(&rt, &memory, &req, n))
    });
    group.bench_function("cooldown_on_redis", |b| {
        b.iter_custom(|n| run(&rt, &shared, &req, n))
    });
    group.bench_function("cooldown_and_rpm_limit_on_redis", |b| {
        b.iter_custom(|n| run(&rt, &both, &req, n))
    });
    group.finish();
}

criterion_group!(benches, redis_store);
criterion_main!(benches);
