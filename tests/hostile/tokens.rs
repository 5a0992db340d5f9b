//! Token counts from clients and providers saturate: a `max_tokens` near
//! `u64::MAX`, provider usage that would overflow a sum, and counts that
//! would wrap when cast for Redis.

use std::sync::Arc;
use std::time::Duration;

use llm_fallback::layers::balance::RoutingStrategy;
use llm_fallback::layers::limit::{InMemoryUsage, LimitLayer, Limits};
#[cfg(feature = "redis")]
use llm_fallback::layers::limit::{RedisUsage, Reservation, UsageStore};
use llm_fallback::mock::{MockProvider, MockServer, ServerReply};
use llm_fallback::providers::anthropic::Anthropic;
#[cfg(feature = "redis")]
use llm_fallback::store::RedisConnection;
use llm_fallback::{ChatRequest, Message, SharedRng, WeightedBalanceLayer};
use serde_json::json;
use tower::{ServiceBuilder, ServiceExt};

const A: &str = "azure/gpt-4o";
const B: &str = "openai/gpt-4o";
/// The most tokens one call is counted for (2^40).
#[cfg(feature = "redis")]
const MAX_TOKENS: u64 = 1 << 40;

fn huge(field: &str) -> ChatRequest {
    ChatRequest::new("gpt-4o", [Message::user("hello")]).with_extra(field, json!(u64::MAX))
}

#[tokio::test(start_paused = true)]
async fn a_max_tokens_near_u64_max_is_a_large_estimate_not_an_overflow() {
    let mock = MockProvider::new();
    let usage = Arc::new(InMemoryUsage::new());
    let limit = LimitLayer::builder()
        .limits(A, Limits::default().with_tpm(1_000_000))
        .store(usage.clone())
        .build()
        .unwrap();
    let layer = WeightedBalanceLayer::builder()
        .route("gpt-4o", [(A, 1.0), (B, 1.0)])
        .strategy(RoutingStrategy::LowestUsage)
        .usage(limit.usage())
        .rng(SharedRng::seeded(3))
        .build()
        .unwrap();
    let svc = ServiceBuilder::new()
        .layer(layer)
        .layer(limit)
        .service(mock.clone());

    for field in ["max_tokens", "max_completion_tokens"] {
        let served = svc.clone().oneshot(huge(field)).await.unwrap();
        // The estimate cannot fit A's limit: B serves, and A is never called.
        assert_eq!(served.model(), B, "{field}");
    }
    assert_eq!(mock.call_count(A), 0);
    assert_eq!(mock.call_count(B), 2);
}

#[tokio::test]
async fn anthropic_usage_that_would_overflow_saturates() {
    let server = MockServer::start().await;
    let body = json!({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
        "content": [{"type": "text", "text": "hi"}], "stop_reason": "end_turn",
        "usage": {"input_tokens": u64::MAX, "output_tokens": u64::MAX,
                  "cache_read_input_tokens": 5, "cache_creation_input_tokens": u64::MAX}
    });
    server.always(
        "claude-x",
        ServerReply::raw(200, "application/json", body.to_string()),
    );
    let client = Anthropic::builder()
        .base_url(server.anthropic_base_url())
        .api_key("k")
        .build()
        .unwrap();
    let request = ChatRequest::new("claude-x", [Message::user("hi")]);
    let response = client.oneshot(request).await.unwrap();
    assert_eq!(response.text().as_deref(), Some("hi"));
    let usage = response.usage().unwrap();
    assert_eq!(usage.prompt_tokens, u64::MAX);
    assert_eq!(usage.total_tokens, u64::MAX);
}

#[cfg(feature = "redis")]
async fn redis_usage(test: &str) -> (RedisUsage, String) {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let prefix = format!("llmfb-test:{test}:{}-{nanos:x}", std::process::id());
    let connection = RedisConnection::builder("redis://127.0.0.1:6379")
        .prefix(&prefix)
        .op_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    connection
        .ping(Duration::from_secs(3))
        .await
        .expect("these tests need Redis on 127.0.0.1:6379");
    (RedisUsage::new(&connection), prefix)
}

#[cfg(feature = "redis")]
/// Polls (real time: Redis is on a socket) until `model`'s usage is `want`.
async fn tokens_become(store: &RedisUsage, model: &str, want: u64) -> u64 {
    let mut seen = None;
    for _ in 0..500 {
        seen = store.usage(model).map(|u| u.tokens);
        if seen == Some(want) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    seen.unwrap_or(0)
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn redis_counts_huge_estimates_and_usage_as_the_maximum_never_wrapped() {
    let (store, prefix) = redis_usage("huge-tokens").await;
    let unlimited = Limits::default();

    // An estimate of u64::MAX is counted as the maximum, in Redis (not the
    // local fallback), exactly.
    let Reservation::Granted(grant) = store.reserve(A, &unlimited, u64::MAX).await else {
        panic!("no limits: granted");
    };
    assert_eq!(tokens_become(&store, A, MAX_TOKENS).await, MAX_TOKENS);
    // Settling with what a provider reported adds nothing past the clamp.
    store.settle(A, grant, 1, u64::MAX);
    assert_eq!(store.usage(A).unwrap().tokens, MAX_TOKENS);

    // A small reservation settled with u64::MAX reported: counted as the
    // maximum, not cast to -1 and subtracted.
    let Reservation::Granted(grant) = store.reserve(B, &unlimited, 10).await else {
        panic!("no limits: granted");
    };
    assert_eq!(store.usage(B).unwrap().tokens, 10);
    store.settle(B, grant, 1, u64::MAX);
    assert_eq!(tokens_become(&store, B, MAX_TOKENS).await, MAX_TOKENS);

    let mut conn = redis::Client::open("redis://127.0.0.1:6379")
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    if !keys.is_empty() {
        let _: () = redis::cmd("DEL")
            .arg(keys)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
}
