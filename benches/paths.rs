//! Where a served call's time goes (issue #18), over a real socket to the
//! crate's mock provider on 127.0.0.1:
//!
//! - `request_path`: a 1.2 KB chat body (bench/post.lua's) into the server
//!   (axum router, in process), through the stack of bench/gateway.toml (the
//!   canonical stack, a two-candidate fallback route, metrics on) to the
//!   OpenAI client, and the mock's JSON answer out as the response body;
//! - `stream_path`: the same with `"stream": true`: the mock streams 20
//!   chunks (role, 17 words, finish, usage), each parsed by the client and
//!   written again as an SSE event for the caller. Throughput is in chunks.
//!
//! Each group has a `client_only` line, the OpenAI client alone against the
//! same mock: the upstream, the socket and the client's wire work. What the
//! `gateway` line adds to it is the server and the stack. Everything runs on
//! one current-thread runtime, the mock server's work included, so a line is
//! the CPU time of the whole exchange.

use std::time::{Duration, Instant};

use axum::Router;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use http::{header, Request, StatusCode};
use llm_fallback::mock::{MockServer, ServerReply};
use llm_fallback::providers::openai::OpenAi;
use llm_fallback::{ChatRequest, Config, Stack};
use tokio::runtime::Runtime;
use tower::ServiceExt;

/// The gateway's config in bench/load.sh; its upstream becomes the mock.
const GATEWAY_TOML: &str = include_str!("../bench/gateway.toml");
const UPSTREAM: &str = "http://127.0.0.1:18081/v1";
/// The model the route's candidates call upstream.
const UPSTREAM_MODEL: &str = "gpt-4o-mini";
/// 17 words: with the role, finish and usage chunks, a stream of 20.
const ANSWER: &str =
    "Sure here is a short answer in seventeen small words so each chunk stays tiny and done";
const CHUNKS: u64 = 20;

/// bench/post.lua's body: 1.2 KB.
fn body(model: &str, stream: bool) -> String {
    format!(
        r#"{{"model":"{model}","stream":{stream},"temperature":0.2,"max_tokens":256,"messages":[{{"role":"system","content":"You are a helpful assistant that answers concisely and accurately."}},{{"role":"user","content":"{}"}}]}}"#,
        "word ".repeat(210)
    )
}

struct Setup {
    rt: Runtime,
    mock: MockServer,
    app: Router,
    client: OpenAi,
}

fn setup() -> Setup {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mock = rt.block_on(MockServer::start());
    mock.always(UPSTREAM_MODEL, ServerReply::text(ANSWER));
    let toml = GATEWAY_TOML.replace(UPSTREAM, &mock.base_url());
    let config = Config::from_toml_str(&toml).unwrap();
    let app = rt.block_on(async {
        let stack = Stack::builder()
            .config(config)
            .env(|_| None)
            .build()
            .unwrap();
        stack.server().build().unwrap()
    });
    let client = OpenAi::builder()
        .base_url(mock.base_url())
        .api_key("sk-bench")
        .build()
        .unwrap();
    Setup {
        rt,
        mock,
        app,
        client,
    }
}

/// One call through the server; the response body read to the end.
async fn through_gateway(app: &Router, body: &str) -> axum::body::Bytes {
    let request = Request::post("/v1/chat/completions")
        .header(header::CONTENT_TYPE, "application/json")
        .body(axum::body::Body::from(body.to_owned()))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap()
}

/// One call of the client alone; a stream drained to its end.
async fn client_only(client: &OpenAi, request: &ChatRequest) {
    let response = client.clone().oneshot(request.clone()).await.unwrap();
    if !response.is_stream() {
        std::hint::black_box(response);
        return;
    }
    let mut stream = response.into_stream().unwrap();
    while let Some(chunk) = stream.next_chunk().await {
        std::hint::black_box(chunk.unwrap());
    }
}

/// Time for `iters` sequential calls of `call`; the mock's record of the
/// calls is cleared after each batch, so it does not grow over the run.
fn timed<F: std::future::Future<Output = ()>>(
    s: &Setup,
    iters: u64,
    mut call: impl FnMut() -> F,
) -> Duration {
    let elapsed = s.rt.block_on(async {
        let start = Instant::now();
        for _ in 0..iters {
            call().await;
        }
        start.elapsed()
    });
    s.mock.clear_calls();
    elapsed
}

/// Checks once that the stack serves what the lines measure.
fn check(s: &Setup) {
    let json =
        s.rt.block_on(through_gateway(&s.app, &body("bench", false)));
    let json: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(json["choices"][0]["message"]["content"], ANSWER);
    let sse = s.rt.block_on(through_gateway(&s.app, &body("bench", true)));
    let sse = std::str::from_utf8(&sse).unwrap();
    // The caller did not ask for usage: the usage chunk is not passed on.
    assert_eq!(sse.matches("data: {").count() as u64, CHUNKS - 1, "{sse}");
    assert!(sse.ends_with("data: [DONE]\n\n"), "{sse}");
    s.mock.clear_calls();
}

fn group(c: &mut Criterion, s: &Setup, name: &str, stream: bool) {
    let mut group = c.benchmark_group(name);
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    if stream {
        group.throughput(Throughput::Elements(CHUNKS));
    }
    let request: ChatRequest = serde_json::from_str(&body(UPSTREAM_MODEL, stream)).unwrap();
    let (client, request) = (&s.client, &request);
    group.bench_function("client_only", |b| {
        b.iter_custom(|iters| timed(s, iters, move || client_only(client, request)))
    });
    let gateway_body = body("bench", stream);
    let (app, gateway_body) = (&s.app, gateway_body.as_str());
    group.bench_function("gateway", |b| {
        b.iter_custom(|iters| {
            timed(s, iters, move || async move {
                std::hint::black_box(through_gateway(app, gateway_body).await);
            })
        })
    });
    group.finish();
}

fn paths(c: &mut Criterion) {
    let s = setup();
    check(&s);
    group(c, &s, "request_path", false);
    group(c, &s, "stream_path", true);
}

criterion_group!(benches, paths);
criterion_main!(benches);
