//! Stacks built from configs with `[store]`, `[limits]` and route
//! strategies: two stacks from one config share breakers (models' and
//! keys') on the real Redis at 127.0.0.1:6379; a least-busy route with an
//! rpm limit spreads calls and never exceeds the limit, wherever the model
//! is called (in memory, paused time).
//!
//! The Redis tests run on real time: the store's budget runs against a
//! real server.
#![cfg(all(
    feature = "redis",
    feature = "mock",
    feature = "openai",
    feature = "toml"
))]

mod redis_support;

use std::time::Duration;

use llm_fallback::mock::{MockProvider, MockReply, MockServer, ServerReply};
use llm_fallback::{ChatError, ChatRequest, ChatResponse, Config, ErrorKind, Message, Stack};
use redis_support::{cleanup, connect, keys, unique_prefix, REDIS};
use tokio::task::JoinSet;
use tower::ServiceExt;

fn request(model: &str) -> ChatRequest {
    ChatRequest::new(model, [Message::user("hello")])
}

async fn ask(stack: &Stack, model: &str) -> Result<ChatResponse, ChatError> {
    stack.clone().oneshot(request(model)).await
}

/// `[store]` on the test Redis under `prefix`, with a budget generous
/// enough that Redis, not a timeout, decides every operation.
fn redis_store(prefix: &str) -> String {
    format!(
        "[store]\ntype = \"redis\"\nurl = \"redis://{REDIS}\"\nprefix = \"{prefix}\"\nop_timeout = \"1s\"\n"
    )
}

/// One replica: the stack `toml` describes, with mock providers of its own.
struct Replica {
    stack: Stack,
    azure: MockProvider,
    openai: MockProvider,
}

fn replica(toml: &str) -> Replica {
    let (azure, openai) = (MockProvider::new(), MockProvider::new());
    let stack = Stack::builder()
        .config(Config::from_toml_str(toml).unwrap())
        .provider("azure", azure.clone())
        .provider("openai", openai.clone())
        .build()
        .unwrap();
    Replica {
        stack,
        azure,
        openai,
    }
}

#[tokio::test]
async fn two_stacks_from_one_redis_config_share_a_tripped_breaker() {
    let prefix = unique_prefix("stack-trip");
    connect(REDIS, &prefix, Duration::from_secs(1)).await; // a clear failure without Redis
    let toml = format!(
        r#"
[routes]
gpt-4o = ["azure/gpt-4o", "openai/gpt-4o"]
[retry]
max_retries = 0
[cooldown]
consecutive_failures = 1
cooldown = "30s"
failure_ratio = false
{}"#,
        redis_store(&prefix)
    );
    let (one, two) = (replica(&toml), replica(&toml));
    one.azure
        .always("gpt-4o", MockReply::error(ErrorKind::Server));

    // One: azure fails once, which trips its breaker (on Redis); openai serves.
    assert_eq!(
        ask(&one.stack, "gpt-4o").await.unwrap().model(),
        "openai/gpt-4o"
    );
    assert_eq!(one.azure.call_count("gpt-4o"), 1);

    // Two never saw azure fail, yet skips it without calling it.
    for _ in 0..3 {
        let served = ask(&two.stack, "gpt-4o").await.unwrap();
        assert_eq!(served.model(), "openai/gpt-4o");
        let skipped = &served.attempts()[0];
        assert_eq!(
            (skipped.model.as_str(), skipped.upstream),
            ("azure/gpt-4o", false)
        );
    }
    assert_eq!(two.azure.call_count("gpt-4o"), 0, "two never called azure");
    assert_eq!(two.openai.call_count("gpt-4o"), 3);
    let stored = keys(&prefix).await;
    assert!(
        stored.iter().any(|k| k.ends_with(":azure/gpt-4o")),
        "the breaker lives under the config's prefix: {stored:?}"
    );

    cleanup(&prefix).await;
}

const KEY_A: &str = "sk-store-A-0001";
const KEY_C: &str = "sk-store-C-0002";

#[tokio::test]
async fn a_key_rate_limited_in_one_stack_is_skipped_by_the_other_through_redis() {
    let prefix = unique_prefix("stack-keys");
    connect(REDIS, &prefix, Duration::from_secs(1)).await;
    let server = MockServer::start().await;
    server.always_for_key(
        "m",
        KEY_A,
        ServerReply::error(429, "rate_limit_exceeded", "slow down"),
    );
    let toml = format!(
        r#"
[providers.p]
kind = "openai"
base_url = "{}"
keys = [{{ label = "a", env = "A_KEY" }}, {{ label = "c", env = "C_KEY", tier = 1 }}]
[routes]
chat = ["p/m"]
{}"#,
        server.base_url(),
        redis_store(&prefix)
    );
    let build = || {
        Stack::builder()
            .config(Config::from_toml_str(&toml).unwrap())
            .env(|var| match var {
                "A_KEY" => Some(KEY_A.to_owned()),
                "C_KEY" => Some(KEY_C.to_owned()),
                _ => None,
            })
            .build()
            .unwrap()
    };
    let (one, two) = (build(), build());

    // One: key A (tier 0) is rate-limited, key C serves.
    ask(&one, "chat").await.unwrap();
    // Two goes straight to C: A cools on Redis.
    ask(&two, "chat").await.unwrap();

    let presented: Vec<_> = (server.calls().iter())
        .map(|c| c.api_key().unwrap_or("<none>").to_owned())
        .collect();
    assert_eq!(presented, [KEY_A, KEY_C, KEY_C]);
    let stored = keys(&prefix).await;
    assert!(
        stored.iter().any(|k| k.ends_with(":p#a")),
        "the key's breaker lives on Redis: {stored:?}"
    );

    cleanup(&prefix).await;
}

/// Starts `n` calls for `model` at once and waits for them all.
async fn at_once(stack: &Stack, model: &'static str, n: usize) -> Vec<ChatResponse> {
    let mut calls = JoinSet::new();
    for _ in 0..n {
        let stack = stack.clone();
        calls.spawn(async move { ask(&stack, model).await });
    }
    let results = calls.join_all().await;
    results.into_iter().map(|r| r.unwrap()).collect()
}

#[tokio::test(start_paused = true)]
async fn a_least_busy_route_with_an_rpm_limit_spreads_calls_and_holds_the_limit_everywhere() {
    let r = replica(
        r#"
seed = 3
[routes]
gpt-4o = { weights = { "azure/gpt-4o" = 10, "openai/gpt-4o" = 1 }, strategy = "least_busy" }
in-order = ["azure/gpt-4o", "openai/gpt-4o"]
[limits]
"azure/gpt-4o" = { rpm = 3 }
[retry]
max_retries = 0
"#,
    );
    for mock in [&r.azure, &r.openai] {
        mock.always(
            "gpt-4o",
            MockReply::text("done").after(Duration::from_secs(1)),
        );
    }
    let counts = || (r.azure.call_count("gpt-4o"), r.openai.call_count("gpt-4o"));

    // Weights of 10:1 would send nearly all to azure; the least busy alternates.
    at_once(&r.stack, "gpt-4o", 4).await;
    assert_eq!(counts(), (2, 2));

    // Azure has 1 call left this minute: it takes one of 6, openai the rest.
    at_once(&r.stack, "gpt-4o", 6).await;
    assert_eq!(counts(), (3, 7));

    // Full, azure is skipped without a call in an ordered route too.
    let served = ask(&r.stack, "in-order").await.unwrap();
    assert_eq!(served.model(), "openai/gpt-4o");
    let skipped = &served.attempts()[0];
    assert_eq!(
        (skipped.model.as_str(), skipped.upstream),
        ("azure/gpt-4o", false)
    );
    assert_eq!(counts(), (3, 8));

    // The next minute, azure takes calls again.
    tokio::time::sleep(Duration::from_secs(60)).await;
    at_once(&r.stack, "gpt-4o", 2).await;
    assert_eq!(counts(), (4, 9));
}
