//! The cost of the reliability layers over calling the leaf directly.
//!
//! The leaf is an instant in-process service that returns a prebuilt answer,
//! so what is measured is the layers' own work per request: the canonical
//! stack on the happy path must stay under 2 µs over the leaf, and must not
//! grow with prompt size (requests are cloned per attempt, never deep-copied).

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use llm_fallback::ChatRequest;
use tower::ServiceExt;

mod common;
use common::{canonical, canonical_hedged, request, InstantLeaf, Svc};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

/// Mean time per request over `iters` sequential calls in one runtime.
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

fn stack(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("stack");
    for (label, bytes) in [("1KB", 1 << 10), ("1MB", 1 << 20)] {
        let leaf = Svc::new(InstantLeaf::new());
        let full = canonical(InstantLeaf::new(), 2);
        let req = request("azure/gpt-4o-mini", bytes);
        group.bench_with_input(BenchmarkId::new("leaf_direct", label), &req, |b, r| {
            b.iter_custom(|n| run(&rt, &leaf, r, n))
        });
        group.bench_with_input(BenchmarkId::new("canonical_happy", label), &req, |b, r| {
            b.iter_custom(|n| run(&rt, &full, r, n))
        });
        let hedged = canonical_hedged(InstantLeaf::new(), 2);
        group.bench_with_input(
            BenchmarkId::new("canonical_hedged_happy", label),
            &req,
            |b, r| b.iter_custom(|n| run(&rt, &hedged, r, n)),
        );
    }
    let full = canonical(InstantLeaf::new(), 1);
    let req = request("failing/gpt-4o-mini", 1 << 10);
    group.bench_function("canonical_retry_then_fallback/1KB", |b| {
        b.iter_custom(|n| run(&rt, &full, &req, n))
    });
    let req = request("smart", 1 << 10);
    group.bench_function("canonical_weighted_alias/1KB", |b| {
        b.iter_custom(|n| run(&rt, &full, &req, n))
    });
    group.finish();
}

criterion_group!(benches, stack);
criterion_main!(benches);
