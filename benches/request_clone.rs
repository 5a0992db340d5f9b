//! Cloning a `ChatRequest` must be O(1) in prompt size: retry and fallback
//! layers clone it for every attempt.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use llm_fallback::{ChatRequest, Message};

fn request_with_prompt(bytes: usize) -> ChatRequest {
    ChatRequest::new(
        "openai/gpt-4o-mini",
        [
            Message::system("You are a helpful assistant."),
            Message::user("x".repeat(bytes)),
        ],
    )
    .with_extra("temperature", serde_json::json!(0.2))
}

fn clone(c: &mut Criterion) {
    let mut group = c.benchmark_group("chat_request_clone");
    for (label, bytes) in [("1KB", 1 << 10), ("100KB", 100 << 10), ("1MB", 1 << 20)] {
        let request = request_with_prompt(bytes);
        group.throughput(Throughput::Elements(1));
        group.bench_with_input(BenchmarkId::from_parameter(label), &request, |b, r| {
            b.iter(|| std::hint::black_box(r.clone()))
        });
    }
    group.finish();
}

criterion_group!(benches, clone);
criterion_main!(benches);
