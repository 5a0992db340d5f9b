//! Property tests of the parsers that take input from the network or from
//! a user: no input panics. Bounded case counts, so `cargo test` stays fast.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use http::{HeaderMap, HeaderValue, Request};
use llm_fallback::mock::MockProvider;
use llm_fallback::providers::http_error::{retry_after, MAX_RETRY_AFTER};
use llm_fallback::server::Server;
use llm_fallback::{Config, Stack};
use proptest::prelude::*;
use tower::ServiceExt;

/// Texts a `Retry-After` may hold: any bytes, numbers of every shape,
/// and HTTP dates from 1970 to 9999.
fn header_text() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..40),
        any::<f64>().prop_map(|f| f.to_string().into_bytes()),
        any::<f64>().prop_map(|f| format!("{f:e}").into_bytes()),
        any::<i128>().prop_map(|n| n.to_string().into_bytes()),
        any::<u128>().prop_map(|n| format!("{n}.{n}").into_bytes()),
        (0u64..253_402_300_799).prop_map(|secs| {
            httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(secs)).into_bytes()
        }),
        Just(b"inf".to_vec()),
        Just(b"-0".to_vec()),
        Just(b"NaN".to_vec()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn retry_after_never_panics_and_stays_within_the_clamp(
        seconds in header_text(),
        millis in proptest::option::of(header_text()),
    ) {
        let mut headers = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_bytes(&seconds) {
            headers.insert("retry-after", v);
        }
        if let Some(Ok(v)) = millis.as_deref().map(HeaderValue::from_bytes) {
            headers.insert("retry-after-ms", v);
        }
        if let Some(after) = retry_after(&headers) {
            prop_assert!(after <= MAX_RETRY_AFTER, "{after:?}");
        }
    }
}

/// Pieces of a config: real keys with hostile values, so parsing gets past
/// the syntax into the values.
fn config_toml() -> impl Strategy<Value = String> {
    let key = prop::sample::select(vec![
        "timeout.total",
        "timeout.attempt",
        "timeout.headers",
        "timeout.first_token",
        "timeout.idle",
        "timeout.stream_total",
        "retry.max_retries",
        "retry.max_retry_after",
        "retry.backoff",
        "retry.backoff.base",
        "retry.backoff.factor",
        "retry.backoff.cap",
        "cooldown.cooldown",
        "cooldown.consecutive_failures",
        "cooldown.max_retry_after",
        "fallback.max_fallbacks",
        "server.body_limit",
        "server.shutdown_grace",
        "seed",
        "routes.chat",
    ]);
    let value = prop_oneof![
        any::<f64>().prop_map(|f| if f.is_finite() {
            format!("{f:?}")
        } else {
            "1e308".into()
        }),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u32>().prop_map(|n| format!("\"{n}ms\"")),
        any::<f64>().prop_map(|f| format!("\"{f}s\"")),
        any::<f64>().prop_map(|f| format!("\"{f:e}h\"")),
        Just("\"none\"".to_owned()),
        Just("nan".to_owned()),
        Just("inf".to_owned()),
        Just("-inf".to_owned()),
        Just("[\"a/x\", \"b/y\"]".to_owned()),
        Just("{ default = \"1e300s\", models = { \"a/x\" = \"-1s\" } }".to_owned()),
        any::<String>().prop_map(|s| format!("{s:?}")),
    ];
    proptest::collection::vec((key, value), 0..6).prop_map(|pairs| {
        let mut text = String::from(
            "[providers.a]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\n\
             [providers.b]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\n",
        );
        for (key, value) in pairs {
            let (table, name) = key.rsplit_once('.').unwrap_or(("", key));
            if table.is_empty() {
                text = format!("{name} = {value}\n{text}");
            } else {
                text.push_str(&format!("[{table}]\n{name} = {value}\n"));
            }
        }
        text
    })
}

/// Builds what parsed: building must not panic either.
fn build(config: Config) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _inside = runtime.enter();
    let _ = Stack::builder()
        .config(config)
        .env(|_| Some("k".to_owned()))
        .build();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn config_parsing_never_panics_on_arbitrary_text(text in any::<String>()) {
        if let Ok(config) = Config::from_toml_str(&text) {
            build(config);
        }
        if let Ok(config) = Config::from_json_str(&text) {
            build(config);
        }
    }

}

proptest! {
    // Each case that parses builds real clients (TLS roots and all): fewer.
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn config_parsing_never_panics_on_hostile_values(text in config_toml()) {
        if let Ok(config) = Config::from_toml_str(&text) {
            build(config);
        }
    }
}

/// Bodies a client may send: any bytes, and JSON with the right keys and
/// wrong values.
fn chat_body() -> impl Strategy<Value = Vec<u8>> {
    let value = prop_oneof![
        Just("null".to_owned()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| if f.is_finite() {
            format!("{f:?}")
        } else {
            "1e999".into()
        }),
        any::<String>().prop_map(|s| serde_json::to_string(&s).unwrap()),
        Just("[]".to_owned()),
        Just("{}".to_owned()),
        Just(r#"[{"role": "user", "content": "hi"}]"#.to_owned()),
        Just(r#"[{"role": "user", "content": [{"type": "text", "text": 1}]}]"#.to_owned()),
        Just(r#"[{"role": "\u001b[31m", "content": null}]"#.to_owned()),
        Just("true".to_owned()),
    ];
    let key = prop::sample::select(vec![
        "model",
        "messages",
        "stream",
        "max_tokens",
        "max_completion_tokens",
        "stream_options",
        "n",
        "temperature",
    ]);
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..200),
        proptest::collection::vec((key, value), 0..6).prop_map(|pairs| {
            let fields: Vec<String> = std::iter::once("\"model\": \"m\"".to_owned())
                .chain(pairs.iter().map(|(k, v)| format!("{k:?}: {v}")))
                .collect();
            format!("{{{}}}", fields.join(", ")).into_bytes()
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_server_answers_any_body_with_a_4xx_or_a_success(body in chat_body()) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let status = runtime.block_on(async {
            let router = Server::builder(MockProvider::new()).build().unwrap();
            let request = Request::post("/v1/chat/completions")
                .header("content-type", "application/json")
                .body(Body::from(body.clone()))
                .unwrap();
            let response = router.oneshot(request).await.unwrap();
            let status = response.status();
            // Read the whole answer (a stream's too): no panic there either.
            let _ = axum::body::to_bytes(response.into_body(), 1 << 20).await;
            status
        });
        prop_assert!(
            status.is_success() || status.is_client_error(),
            "{status} for {:?}",
            String::from_utf8_lossy(&body)
        );
    }
}

#[test]
fn a_far_http_date_is_clamped() {
    let far = SystemTime::now() + Duration::from_secs(50 * 365 * 24 * 3600);
    let mut headers = HeaderMap::new();
    headers.insert(
        "retry-after",
        HeaderValue::from_str(&httpdate::fmt_http_date(far)).unwrap(),
    );
    assert_eq!(retry_after(&headers), Some(MAX_RETRY_AFTER));
}
