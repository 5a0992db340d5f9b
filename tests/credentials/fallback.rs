//! Credentials inside the canonical stack: rotation first, then Retry, then ProviderFallback.

use llm_fallback::mock::{MockServer, ServerReply};
use llm_fallback::providers::credentials::{Credentials, Key};
use llm_fallback::providers::openai::{Azure, OpenAi};
use std::time::Duration;

use llm_fallback::layers::retry::Backoff;
use llm_fallback::{
    BoxChatService, CooldownLayer, ErrorKind, ProviderFallbackLayer, Providers, RetryLayer,
};
use tower::{ServiceBuilder, ServiceExt};

use crate::*;

const AZURE: &str = "azure/gpt-4o-mini";
const KEY_D: &str = "azure-test-D-SECRET-0004";

/// ProviderFallback → Cooldown → Retry(`retries`) → Providers, with the
/// keys of `openai` rotated and Azure behind one key.
fn stack(server: &MockServer, openai: Credentials<OpenAi>, retries: u32) -> BoxChatService {
    let azure = Azure::builder()
        .endpoint(server.endpoint())
        .api_key(KEY_D)
        .build()
        .unwrap();
    let providers = Providers::builder()
        .provider("openai", openai)
        .provider("azure", azure)
        .build()
        .unwrap();
    let cooldown = CooldownLayer::new();
    let fallback = ProviderFallbackLayer::builder()
        .group([ID, AZURE])
        .health(cooldown.health())
        .build()
        .unwrap();
    BoxChatService::new(
        ServiceBuilder::new()
            .layer(fallback)
            .layer(cooldown)
            .layer(
                RetryLayer::builder()
                    .max_retries(retries)
                    // Real time (sockets): a backoff that costs nothing.
                    .backoff(
                        Backoff::builder()
                            .base(Duration::from_millis(1))
                            .build()
                            .unwrap(),
                    )
                    .build()
                    .unwrap(),
            )
            .service(providers),
    )
}

#[tokio::test]
async fn when_every_key_fails_the_error_is_the_last_keys_and_falls_back() {
    let server = MockServer::start().await;
    server.always_for_key(MODEL, KEY_A, ServerReply::status(429));
    server.always_for_key(MODEL, KEY_B, ServerReply::status(401));
    let keys = Credentials::builder("openai")
        .key(Key::new("a", openai(&server, KEY_A)))
        .key(Key::new("b", openai(&server, KEY_B)))
        .round_robin()
        .build()
        .unwrap();

    let error = keys.oneshot(request(MODEL)).await.unwrap_err();

    assert_eq!(error.kind(), ErrorKind::Auth, "{error}");
    assert!(error.kind().is_fallbackable());
    assert!(error.to_string().contains("2 keys tried"), "{error}");
    assert_eq!(keys_called(&server), [KEY_A, KEY_B]);
}

#[tokio::test]
async fn when_every_key_fails_the_stack_moves_to_the_next_provider() {
    let server = MockServer::start().await;
    script_abc(&server, MODEL);
    server.always_for_key(MODEL, KEY_C, ServerReply::status(403));
    let keys = abc(&server, [0, 0, 0]).build().unwrap();

    let response = stack(&server, keys, 2).oneshot(request(ID)).await.unwrap();

    assert_eq!(response.model(), AZURE);
    assert_eq!(keys_called(&server), [KEY_A, KEY_B, KEY_C, KEY_D]);
    assert_eq!(
        attempts(response.attempts()),
        [
            entry(ID, Some("a"), Some(ErrorKind::RateLimited)),
            entry(ID, Some("b"), Some(ErrorKind::Auth)),
            entry(ID, Some("c"), Some(ErrorKind::Auth)),
            entry(AZURE, None, None),
        ],
        "one entry per upstream call, none logged twice"
    );
}

#[tokio::test]
async fn rotating_keys_spends_none_of_the_model_retries() {
    let server = MockServer::start().await;
    script_abc(&server, MODEL);
    let keys = abc(&server, [0, 0, 0]).build().unwrap();

    // No retry at all, yet three keys are tried within the one attempt.
    let response = stack(&server, keys.clone(), 0)
        .oneshot(request(ID))
        .await
        .unwrap();
    assert_eq!(response.model(), ID);
    assert_eq!(keys_called(&server), [KEY_A, KEY_B, KEY_C]);
}

#[tokio::test]
async fn a_retry_after_a_server_error_starts_from_the_keys_still_available() {
    let server = MockServer::start().await;
    script_abc(&server, MODEL);
    server.script_for_key(MODEL, KEY_C, [ServerReply::status(503)]);
    let keys = abc(&server, [0, 0, 0]).build().unwrap();

    let response = stack(&server, keys, 1).oneshot(request(ID)).await.unwrap();

    assert_eq!(response.model(), ID);
    assert_eq!(keys_called(&server), [KEY_A, KEY_B, KEY_C, KEY_C]);
    assert_eq!(
        attempts(response.attempts()),
        [
            entry(ID, Some("a"), Some(ErrorKind::RateLimited)),
            entry(ID, Some("b"), Some(ErrorKind::Auth)),
            entry(ID, Some("c"), Some(ErrorKind::Server)),
            entry(ID, Some("c"), None),
        ]
    );
}
