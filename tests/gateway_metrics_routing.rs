//! `GET /metrics` after what routing does beyond a plain fallback: a model
//! skipped at its rpm limit, a stream cut and finished by another model, a
//! hedge that serves.
#![cfg(all(
    feature = "server",
    feature = "mock",
    feature = "openai",
    feature = "toml"
))]

mod metrics_support;

use std::time::Duration;

use llm_fallback::mock::ServerReply;
use llm_fallback::server;
use metrics_support::{mocks, providers, Gateway};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn limited_skips_and_stream_recoveries_are_counted_apart() {
    let (a, b) = mocks().await;
    a.always("capped", ServerReply::text("within the limit"));
    a.always(
        "cutter",
        ServerReply::text("one two three four")
            .in_chunks(4)
            .cut_after(2),
    );
    // Recovery passes on a restarted answer past the text already sent.
    b.always("same", ServerReply::text("one two three four"));
    let gw = Gateway::start(&format!(
        r#"
        {}
        [routes]
        capped = ["a/capped", "b/good"]
        recover = ["a/cutter", "b/same"]
        [limits]
        "a/capped" = {{ rpm = 1 }}
        [fallback]
        recover_streams = true
        [retry]
        max_retries = 0
        [cooldown]
        enabled = false
        [server]
        api_key_env = "GW_KEY"
        "#,
        providers(&a, &b)
    ))
    .await;

    assert_eq!(gw.chat("capped").await.status(), StatusCode::OK);
    // Over its rpm now: passed over without a call.
    assert_eq!(gw.chat("capped").await.status(), StatusCode::OK);
    assert_eq!(a.call_count("capped"), 1);
    let r = gw
        .post(json!({"model": "recover", "stream": true,
                     "messages": [{"role": "user", "content": "hi there"}]}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().ends_with("data: [DONE]\n\n"));

    let m = gw.scrape().await;
    let model = |id| [("gen_ai_request_model", id)];
    let limited = [("gen_ai_request_model", "a/capped"), ("reason", "limited")];
    assert_eq!(m.value("llm_fallback_skips_total", &limited), 1.0);
    assert_eq!(m.total("llm_fallback_skips_total", &[]), 1.0);
    assert_eq!(
        m.value("llm_fallback_recoveries_total", &model("a/cutter")),
        1.0
    );
    assert_eq!(m.total("llm_fallback_recoveries_total", &[]), 1.0);
    let attempts = "llm_fallback_upstream_attempts_total";
    let cut = [
        ("gen_ai_request_model", "a/cutter"),
        ("outcome", "stream_interrupted"),
    ];
    assert_eq!(m.value(attempts, &cut), 1.0);
    assert_eq!(
        m.value("llm_fallback_fallbacks_total", &model("recover")),
        1.0
    );
    assert_eq!(m.total("llm_fallback_fallbacks_total", &[]), 1.0);
    let recovered = [
        ("gen_ai_request_model", "recover"),
        ("gen_ai_response_model", "b/same"),
        ("outcome", "completed"),
    ];
    assert_eq!(m.value("llm_fallback_requests_total", &recovered), 1.0);
    assert_eq!(
        m.total(
            "gen_ai_server_time_to_first_token_seconds_count",
            &model("recover")
        ),
        1.0
    );
}

#[tokio::test]
async fn a_hedge_that_serves_is_counted_as_a_hedge_won_and_its_racer_as_cancelled() {
    let (a, b) = mocks().await;
    a.always(
        "slow",
        ServerReply::text("late").after(Duration::from_secs(10)),
    );
    let gw = Gateway::start(&format!(
        r#"
        {}
        [routes]
        hedged = ["a/slow", "b/good"]
        [fallback.hedge]
        delay = "100ms"
        budget = {{ window = "10s", min_per_second = 0, ratio = 1.0 }}
        [retry]
        max_retries = 0
        [server]
        api_key_env = "GW_KEY"
        "#,
        providers(&a, &b)
    ))
    .await;

    let r = gw.chat("hedged").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[server::MODEL_HEADER], "b/good");

    let m = gw.scrape().await;
    let model = |id| [("gen_ai_request_model", id)];
    assert_eq!(m.value("llm_fallback_hedges_total", &model("b/good")), 1.0);
    assert_eq!(m.total("llm_fallback_hedges_total", &[]), 1.0);
    assert_eq!(
        m.value("llm_fallback_hedges_won_total", &model("b/good")),
        1.0
    );
    let attempts = "llm_fallback_upstream_attempts_total";
    let raced = [("gen_ai_request_model", "a/slow"), ("outcome", "cancelled")];
    assert_eq!(m.value(attempts, &raced), 1.0);
    assert_eq!(
        m.value(
            attempts,
            &[("gen_ai_request_model", "b/good"), ("outcome", "ok")]
        ),
        1.0
    );
    assert_eq!(
        m.value("llm_fallback_fallbacks_total", &model("hedged")),
        1.0
    );
    assert_eq!(m.total("llm_fallback_retries_total", &[]), 0.0);
}
