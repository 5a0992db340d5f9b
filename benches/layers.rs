//! Each layer alone over an instant in-process leaf, and the wire-format work
//! the gateway does per request: what a user pays for each piece.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use llm_fallback::chat::{ChatChunk, ChatCompletion};
use llm_fallback::{
    ChatRequest, CooldownLayer, Message, PrependMessagesLayer, ProviderFallbackLayer, RetryLayer,
    SelectModelLayer, SharedRng, TimeoutLayer, WeightedBalanceLayer,
};
use tower::{Layer, ServiceExt};

mod common;
use common::{request, InstantLeaf, Svc};

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

fn layered<L>(layer: L) -> Svc
where
    L: Layer<InstantLeaf>,
    L::Service: tower::Service<
            ChatRequest,
            Response = llm_fallback::ChatResponse,
            Error = llm_fallback::ChatError,
        > + Clone
        + Send
        + Sync
        + 'static,
    <L::Service as tower::Service<ChatRequest>>::Future: Send + 'static,
{
    Svc::new(layer.layer(InstantLeaf::new()))
}

fn layers(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let req = request("azure/gpt-4o-mini", 1 << 10);
    let alias = request("smart", 1 << 10);
    let cases: Vec<(&str, Svc, &ChatRequest)> = vec![
        ("leaf_direct", Svc::new(InstantLeaf::new()), &req),
        (
            "timeout_total",
            layered(TimeoutLayer::total(Duration::from_secs(60))),
            &req,
        ),
        (
            "timeout_attempt",
            layered(TimeoutLayer::attempt(Duration::from_secs(30))),
            &req,
        ),
        ("retry", layered(RetryLayer::new(2)), &req),
        ("cooldown", layered(CooldownLayer::new()), &req),
        (
            "fallback_grouped",
            layered(
                ProviderFallbackLayer::builder()
                    .group(["azure/gpt-4o-mini", "openai/gpt-4o-mini"])
                    .build()
                    .unwrap(),
            ),
            &req,
        ),
        (
            "balance_alias",
            layered(
                WeightedBalanceLayer::builder()
                    .route("smart", [("azure/gpt-4o", 0.7), ("openai/gpt-4o", 0.3)])
                    .rng(SharedRng::seeded(7))
                    .build()
                    .unwrap(),
            ),
            &alias,
        ),
        (
            "prepend",
            layered(
                PrependMessagesLayer::builder()
                    .model("azure/gpt-4o-mini", [Message::system("Be brief.")])
                    .build()
                    .unwrap(),
            ),
            &req,
        ),
        (
            "select_fn",
            layered(
                SelectModelLayer::from_fn(|_: &ChatRequest| async {
                    Ok::<_, std::convert::Infallible>("openai/gpt-4o-mini".to_owned())
                })
                .candidates(["openai/gpt-4o-mini", "azure/gpt-4o-mini"])
                .build()
                .unwrap(),
            ),
            &req,
        ),
    ];
    let mut group = c.benchmark_group("layer_alone");
    for (name, svc, r) in &cases {
        group.bench_function(*name, |b| b.iter_custom(|n| run(&rt, svc, r, n)));
    }
    group.finish();
}

/// A typical 1.2 KB chat request body, as clients send it.
fn request_json() -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You are a helpful assistant that answers concisely and accurately."},
            {"role": "user", "content": "word ".repeat(220)}
        ],
        "temperature": 0.2,
        "max_tokens": 256,
        "stream": false
    }))
    .unwrap()
}

fn wire(c: &mut Criterion) {
    let body = request_json();
    let completion: ChatCompletion = serde_json::from_value(serde_json::json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000, "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello! How can I help you today?"},
                     "finish_reason": "stop", "logprobs": null}],
        "usage": {"prompt_tokens": 300, "completion_tokens": 9, "total_tokens": 309},
        "system_fingerprint": "fp_1"
    }))
    .unwrap();
    let chunk = br#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":" world"},"finish_reason":null,"logprobs":null}]}"#;

    let mut group = c.benchmark_group("wire");
    group.bench_function("request_parse_1.2KB", |b| {
        b.iter(|| ChatRequest::from_json(std::hint::black_box(&body)).unwrap())
    });
    group.bench_function("request_parse_and_serialize_1.2KB", |b| {
        b.iter(|| {
            let r = ChatRequest::from_json(std::hint::black_box(&body)).unwrap();
            serde_json::to_vec(&r).unwrap()
        })
    });
    group.bench_function("response_serialize", |b| {
        b.iter(|| serde_json::to_vec(std::hint::black_box(&completion)).unwrap())
    });
    group.bench_function("sse_chunk_parse_and_serialize", |b| {
        b.iter(|| {
            let parsed: ChatChunk = serde_json::from_slice(std::hint::black_box(chunk)).unwrap();
            serde_json::to_vec(&parsed).unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, layers, wire);
criterion_main!(benches);
