//! A call that is cancelled, or whose stream is dropped before its usage
//! chunk, gives back the completion budget it reserved: clients that cancel
//! cannot starve a rate-limited deployment until the minute ends.
//!
//! In memory on paused time; on the real Redis (127.0.0.1:6379) on real
//! time, polling for the background settlement.

mod redis_support;

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use llm_fallback::layers::limit::{InMemoryUsage, Limits, RedisUsage, UsageStore};
use llm_fallback::mock::{MockProvider, MockReply};
use llm_fallback::{
    ChatError, ChatRequest, ChatResponse, LimitLayer, Message, SharedRng, WeightedBalanceLayer,
};
use redis_support::{cleanup, connect, hget, unique_prefix, within_one_minute, REDIS};
use tower::util::BoxCloneSyncService;
use tower::{ServiceBuilder, ServiceExt};

const A: &str = "azure/gpt-4o";
const B: &str = "openai/gpt-4o";

type Svc = BoxCloneSyncService<ChatRequest, ChatResponse, ChatError>;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// 8 bytes of prompt (2 tokens) and a completion budget of 80: 82 reserved,
/// so a tpm of 100 holds one such call at a time.
fn big(stream: bool) -> ChatRequest {
    ChatRequest::new(A, [Message::user("12345678")])
        .with_extra("max_tokens", serde_json::json!(80))
        .with_stream(stream)
}

fn service(mock: &MockProvider, store: Arc<dyn UsageStore>) -> Svc {
    let limit = LimitLayer::builder()
        .limits(A, Limits::default().with_tpm(100))
        .store(store)
        .build()
        .unwrap();
    let layer = WeightedBalanceLayer::builder()
        .route("gpt-4o", [(A, 1.0), (B, 1.0)])
        .rng(SharedRng::seeded(5))
        .usage(limit.usage())
        .build()
        .unwrap();
    Svc::new(
        ServiceBuilder::new()
            .layer(layer)
            .layer(limit)
            .service(mock.clone()),
    )
}

/// Starts a call and drops it once it is in flight: reserved, sent to the
/// provider, not answered (the mock answers after 1 s).
async fn cancel(svc: &Svc, mock: &MockProvider, request: ChatRequest) {
    let calls = mock.call_count(A);
    let mut call = svc.clone().oneshot(request);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while mock.call_count(A) == calls {
        assert!(
            std::time::Instant::now() < deadline,
            "never reached the provider"
        );
        tokio::select! {
            _ = &mut call => panic!("the mock answers after 1 s"),
            _ = tokio::time::sleep(ms(1)) => {}
        }
    }
    drop(call);
}

/// Takes the stream's first content chunk, then drops the stream.
async fn first_chunk_then_drop(svc: &Svc, request: ChatRequest) {
    let response = svc.clone().oneshot(request).await.unwrap();
    assert_eq!(response.model(), A);
    let mut stream = response.into_stream().unwrap();
    let mut first = stream.next().await.unwrap().unwrap();
    if !first.has_content() {
        first = stream.next().await.unwrap().unwrap(); // after the role-only preamble
    }
    assert_eq!(first.text(), "one ");
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_call_gives_back_its_completion_budget() {
    let mock = MockProvider::new();
    mock.script(A, [MockReply::text("late").after(ms(1000))]);
    let usage = Arc::new(InMemoryUsage::new());
    let svc = service(&mock, usage.clone());

    cancel(&svc, &mock, big(false)).await;
    let used = usage.usage(A).unwrap();
    // The request went out and its prompt counts; the 80 budgeted do not.
    assert_eq!((used.requests, used.tokens), (1, 2));

    let next = svc.clone().oneshot(big(false)).await.unwrap();
    assert_eq!(next.model(), A, "A has room again");
    assert_eq!(mock.call_count(A), 2);
}

#[tokio::test(start_paused = true)]
async fn a_stream_dropped_before_its_usage_chunk_gives_back_its_completion_budget() {
    let mock = MockProvider::new();
    mock.script(A, [MockReply::text("one two three four")]);
    let usage = Arc::new(InMemoryUsage::new());
    let svc = service(&mock, usage.clone());

    first_chunk_then_drop(&svc, big(true)).await;
    let used = usage.usage(A).unwrap();
    // The prompt (2) and the 4 bytes streamed (1), not the 80 budgeted.
    assert_eq!((used.requests, used.tokens), (1, 3));

    let next = svc.clone().oneshot(big(false)).await.unwrap();
    assert_eq!(next.model(), A, "A has room again");
}

/// Polls the deployment's token count on Redis until it is `want`.
async fn redis_tokens_become(prefix: &str, want: &str) {
    let key = format!("{prefix}:use:{A}");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let tokens = hget(&key, "t").await;
        if tokens.as_deref() == Some(want) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "tokens on Redis: {tokens:?}, want {want}"
        );
        tokio::time::sleep(ms(10)).await;
    }
}

#[tokio::test]
async fn on_redis_a_cancelled_call_and_a_dropped_stream_give_back_their_budget() {
    let prefix = unique_prefix("usage-cancel");
    within_one_minute(Duration::from_secs(10)).await;
    let mock = MockProvider::new();
    mock.script(
        A,
        [
            MockReply::text("late").after(ms(1000)),
            MockReply::text("one two three four"),
        ],
    );
    let connection = connect(REDIS, &prefix, ms(1000)).await;
    let svc = service(&mock, Arc::new(RedisUsage::new(&connection)));

    cancel(&svc, &mock, big(false)).await;
    redis_tokens_become(&prefix, "2").await;
    first_chunk_then_drop(&svc, big(true)).await;
    redis_tokens_become(&prefix, "5").await;

    let next = svc.clone().oneshot(big(false)).await.unwrap();
    assert_eq!(next.model(), A, "A has room again");
    assert_eq!(mock.call_count(A), 3);
    cleanup(&prefix).await;
}
