//! What Prometheus metrics cost a served call: the OpenAI-compatible server
//! (axum router, in process, no socket) over the canonical stack and an
//! instant leaf, with `/metrics` on and off.
//!
//! The layers record nothing and know no recorder, so a user of the layers
//! without the server pays nothing for metrics (the `stack` bench is that
//! path); what the server records, once per call when it ends, is the
//! difference between the two lines here.

use std::time::{Duration, Instant};

use axum::Router;
use criterion::{criterion_group, criterion_main, Criterion};
use http::{header, Request, StatusCode};
use llm_fallback::server::Server;
use tower::ServiceExt;

mod common;
use common::{canonical, InstantLeaf};

const BODY: &str = r#"{"model": "azure/gpt-4o-mini", "messages": [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": "Say hello in one short sentence, please."}], "temperature": 0.2}"#;

fn router(metrics: bool) -> Router {
    let stack = canonical(InstantLeaf::new(), 2);
    let builder = Server::builder(stack)
        .route("smart", ["azure/gpt-4o", "openai/gpt-4o"])
        .models(["azure/gpt-4o-mini", "openai/gpt-4o-mini"]);
    let builder = if metrics { builder.metrics() } else { builder };
    builder.build().unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

/// Mean time per call over `iters` sequential calls, body read to the end.
fn run(rt: &tokio::runtime::Runtime, app: &Router, iters: u64) -> Duration {
    rt.block_on(async {
        let start = Instant::now();
        for _ in 0..iters {
            let request = Request::post("/v1/chat/completions")
                .header(header::CONTENT_TYPE, "application/json")
                .body(axum::body::Body::from(BODY))
                .unwrap();
            let response = app.clone().oneshot(request).await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            let body = axum::body::to_bytes(response.into_body(), 1 << 20).await;
            std::hint::black_box(body.unwrap());
        }
        start.elapsed()
    })
}

fn server(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("server");
    for (name, metrics) in [("metrics_off", false), ("metrics_on", true)] {
        let app = router(metrics);
        group.bench_function(name, |b| b.iter_custom(|iters| run(&rt, &app, iters)));
    }
    group.finish();
}

criterion_group!(benches, server);
criterion_main!(benches);
