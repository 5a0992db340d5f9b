//! The same rotation with the Azure client (`api-key`) and the Anthropic client (`x-api-key`).

use llm_fallback::mock::{MockServer, ServerReply};
use llm_fallback::providers::anthropic::Anthropic;
use llm_fallback::providers::credentials::{Credentials, Key};
use llm_fallback::providers::openai::Azure;
use llm_fallback::{ErrorKind, Providers};
use tower::ServiceExt;

use crate::*;

const CLAUDE: &str = "claude-3-5-sonnet-20240620";

#[tokio::test]
async fn azure_keys_rotate_in_the_api_key_header() {
    let server = MockServer::start().await;
    script_abc(&server, "gpt-4o");
    let azure = |key: &str| {
        Azure::builder()
            .endpoint(server.endpoint())
            .api_key(key)
            .build()
            .unwrap()
    };
    let keys = Credentials::builder("azure-eu")
        .key(Key::new("a", azure(KEY_A)))
        .key(Key::new("b", azure(KEY_B)))
        .key(Key::new("c", azure(KEY_C)))
        .round_robin()
        .build()
        .unwrap();
    let providers = Providers::builder()
        .provider("azure-eu", keys)
        .build()
        .unwrap();

    let response = providers
        .clone()
        .oneshot(request("azure-eu/gpt-4o"))
        .await
        .unwrap();
    providers.oneshot(request("azure-eu/gpt-4o")).await.unwrap();

    let headers: Vec<_> = server
        .calls()
        .iter()
        .map(|c| c.header("api-key").map(str::to_owned))
        .collect();
    let expected = [KEY_A, KEY_B, KEY_C, KEY_C].map(|k| Some(k.to_owned()));
    assert_eq!(headers, expected);
    assert!(server
        .calls()
        .iter()
        .all(|c| c.path.starts_with("/openai/deployments/gpt-4o/")));
    let labels: Vec<_> = response
        .attempts()
        .iter()
        .map(|a| a.key.as_deref())
        .collect();
    assert_eq!(labels, [Some("a"), Some("b"), Some("c")]);
    assert_eq!(response.attempts()[0].model, "azure-eu/gpt-4o");
}

#[tokio::test]
async fn anthropic_keys_rotate_in_the_x_api_key_header() {
    let server = MockServer::start().await;
    server.always_for_key(
        CLAUDE,
        KEY_A,
        ServerReply::error(
            429,
            "rate_limit_error",
            "Number of requests has exceeded your rate limit",
        ),
    );
    server.always_for_key(
        CLAUDE,
        KEY_B,
        ServerReply::error(401, "authentication_error", "invalid x-api-key"),
    );
    let anthropic = |key: &str| {
        Anthropic::builder()
            .base_url(server.anthropic_base_url())
            .api_key(key)
            .build()
            .unwrap()
    };
    let keys = Credentials::builder("anthropic")
        .key(Key::new("a", anthropic(KEY_A)))
        .key(Key::new("b", anthropic(KEY_B)))
        .key(Key::new("c", anthropic(KEY_C)).tier(1))
        .round_robin()
        .build()
        .unwrap();
    let id = format!("anthropic/{CLAUDE}");
    let providers = Providers::builder()
        .provider("anthropic", keys.clone())
        .build()
        .unwrap();

    let response = providers.clone().oneshot(request(&id)).await.unwrap();
    let next = providers.oneshot(request(&id)).await.unwrap();

    let headers: Vec<_> = server
        .calls()
        .iter()
        .map(|c| c.header("x-api-key").map(str::to_owned))
        .collect();
    let expected = [KEY_A, KEY_B, KEY_C, KEY_C].map(|k| Some(k.to_owned()));
    assert_eq!(headers, expected);
    assert_eq!(
        attempts(response.attempts()),
        [
            entry(&id, Some("a"), Some(ErrorKind::RateLimited)),
            entry(&id, Some("b"), Some(ErrorKind::Auth)),
            entry(&id, Some("c"), None),
        ]
    );
    assert_eq!(attempts(next.attempts()), [entry(&id, Some("c"), None)]);
    assert!(!keys.is_available("a") && !keys.is_available("b"));
}
