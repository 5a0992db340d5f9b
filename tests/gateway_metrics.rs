//! `GET /metrics` over real sockets: a gateway built from a TOML config in
//! front of mock provider servers on 127.0.0.1, scraped after scripted calls;
//! the text is parsed as Prometheus' text format and its counters checked
//! exactly.
#![cfg(all(
    feature = "server",
    feature = "mock",
    feature = "openai",
    feature = "toml"
))]

mod metrics_support;

use llm_fallback::mock::MockServer;
use metrics_support::{mocks, providers, Gateway, KEY};
use reqwest::StatusCode;
use serde_json::{json, Value};

fn config(a: &MockServer, b: &MockServer, server: &str) -> String {
    let providers = providers(a, b);
    format!(
        r#"
        {providers}

        [routes]
        ok = ["a/good"]
        fall = ["a/down", "b/good"]
        retry = ["a/flaky"]
        stream = ["b/streamer"]

        [retry]
        max_retries = {{ default = 0, models = {{ "a/flaky" = 1 }} }}
        backoff = {{ base = "10ms" }}
        [cooldown]
        consecutive_failures = {{ default = 100, models = {{ "a/down" = 1 }} }}
        cooldown = "60s"
        failure_ratio = false
        adaptive_throttle = false
        [server]
        api_key_env = "GW_KEY"
        {server}
        "#
    )
}

#[tokio::test]
async fn a_scrape_counts_each_call_attempt_fallback_retry_skip_and_stream() {
    let (a, b) = mocks().await;
    let gw = Gateway::start(&config(&a, &b, "")).await;

    let r = gw.chat("ok").await;
    assert_eq!(r.status(), StatusCode::OK);
    let usage = r.json::<Value>().await.unwrap()["usage"].clone();
    assert_eq!(gw.chat("fall").await.status(), StatusCode::OK);
    assert_eq!(gw.chat("retry").await.status(), StatusCode::OK);
    // a/down's breaker opened on its one failure: skipped now.
    assert_eq!(gw.chat("fall").await.status(), StatusCode::OK);
    let r = gw
        .post(
            json!({"model": "stream", "stream": true, "stream_options": {"include_usage": true},
                     "messages": [{"role": "user", "content": "hi there"}]}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().ends_with("data: [DONE]\n\n"));
    assert_eq!(gw.chat("nope").await.status(), StatusCode::NOT_FOUND);
    assert_eq!(a.call_count("down"), 1);

    let m = gw.scrape().await;
    let requests = "llm_fallback_requests_total";
    let call = |route, served, provider| {
        [
            ("gen_ai_request_model", route),
            ("gen_ai_response_model", served),
            ("gen_ai_provider_name", provider),
            ("http_response_status_code", "200"),
            ("outcome", "completed"),
            ("error_type", ""),
        ]
    };
    assert_eq!(m.value(requests, &call("ok", "a/good", "a")), 1.0);
    assert_eq!(m.value(requests, &call("fall", "b/good", "b")), 2.0);
    assert_eq!(m.value(requests, &call("retry", "a/flaky", "a")), 1.0);
    assert_eq!(m.value(requests, &call("stream", "b/streamer", "b")), 1.0);
    assert_eq!(m.total(requests, &[]), 5.0);
    let rejected = [("http_response_status_code", "404")];
    assert_eq!(
        m.value("llm_fallback_rejected_requests_total", &rejected),
        1.0
    );

    let attempts = "llm_fallback_upstream_attempts_total";
    let attempt = |model, outcome| [("gen_ai_request_model", model), ("outcome", outcome)];
    assert_eq!(m.value(attempts, &attempt("a/good", "ok")), 1.0);
    assert_eq!(m.value(attempts, &attempt("a/down", "server")), 1.0);
    assert_eq!(m.value(attempts, &attempt("b/good", "ok")), 2.0);
    assert_eq!(m.value(attempts, &attempt("a/flaky", "server")), 1.0);
    assert_eq!(m.value(attempts, &attempt("a/flaky", "ok")), 1.0);
    assert_eq!(m.value(attempts, &attempt("b/streamer", "ok")), 1.0);
    assert_eq!(m.total(attempts, &[]), 7.0);
    assert_eq!(
        m.value(
            attempts,
            &[
                ("gen_ai_request_model", "a/good"),
                ("gen_ai_provider_name", "a")
            ]
        ),
        1.0
    );

    let model = |id| [("gen_ai_request_model", id)];
    assert_eq!(m.value("llm_fallback_fallbacks_total", &model("fall")), 1.0);
    assert_eq!(m.total("llm_fallback_fallbacks_total", &[]), 1.0);
    assert_eq!(
        m.value("llm_fallback_retries_total", &model("a/flaky")),
        1.0
    );
    assert_eq!(m.total("llm_fallback_retries_total", &[]), 1.0);
    let cooling = [("gen_ai_request_model", "a/down"), ("reason", "cooling")];
    assert_eq!(m.value("llm_fallback_skips_total", &cooling), 1.0);
    assert_eq!(m.total("llm_fallback_skips_total", &[]), 1.0);
    assert_eq!(m.total("llm_fallback_recoveries_total", &[]), 0.0);
    assert_eq!(m.value("llm_fallback_breaker_open", &model("a/down")), 1.0);
    assert_eq!(m.value("llm_fallback_breaker_open", &model("b/good")), 0.0);
    assert_eq!(m.types["llm_fallback_breaker_open"], "gauge");
    let transitions = "llm_fallback_breaker_transitions_total";
    let down = |to| [("gen_ai_request_model", "a/down"), ("to", to)];
    assert_eq!(m.value(transitions, &down("open")), 1.0);
    assert_eq!(m.value(transitions, &down("closed")), 0.0);
    assert_eq!(m.total(transitions, &[]), 1.0);
    assert_eq!(m.types[transitions], "counter");

    // Histograms: one observation per call, per attempt, per stream.
    let duration = "gen_ai_client_operation_duration_seconds";
    assert_eq!(m.types[duration], "histogram");
    assert_eq!(m.total(&format!("{duration}_count"), &[]), 5.0);
    let fall = [("gen_ai_request_model", "fall"), ("le", "+Inf")];
    assert_eq!(m.value(&format!("{duration}_bucket"), &fall), 2.0);
    assert!(m.total(&format!("{duration}_sum"), &[]) > 0.0);
    let ttft = "gen_ai_server_time_to_first_token_seconds";
    let stream = [
        ("gen_ai_request_model", "stream"),
        ("gen_ai_response_model", "b/streamer"),
    ];
    assert_eq!(m.value(&format!("{ttft}_count"), &stream), 1.0);
    assert!(m.value(&format!("{ttft}_sum"), &stream) >= 0.02);
    assert_eq!(m.total(&format!("{ttft}_count"), &[]), 1.0);
    let attempt_duration = "llm_fallback_upstream_attempt_duration_seconds_count";
    assert_eq!(m.total(attempt_duration, &[]), 7.0);
    assert_eq!(m.value(attempt_duration, &model("a/flaky")), 2.0);

    // Tokens: as the answer reported them.
    let tokens = "gen_ai_client_token_usage_sum";
    let ok = |kind| [("gen_ai_request_model", "ok"), ("gen_ai_token_type", kind)];
    assert_eq!(
        m.value(tokens, &ok("input")),
        usage["prompt_tokens"].as_f64().unwrap()
    );
    assert_eq!(
        m.value(tokens, &ok("output")),
        usage["completion_tokens"].as_f64().unwrap()
    );
    let streamed = [
        ("gen_ai_request_model", "stream"),
        ("gen_ai_token_type", "output"),
    ];
    assert_eq!(m.value("gen_ai_client_token_usage_count", &streamed), 1.0);
    assert!(m.value(tokens, &streamed) > 0.0);

    // A model no option names leaves no trace in the labels.
    assert!(!m.text.contains("nope"), "{}", m.text);

    // A call's series are kept once found: the next call counts in the
    // same ones, and a JSON call still makes no time-to-first-token series.
    assert_eq!(gw.chat("ok").await.status(), StatusCode::OK);
    let m = gw.scrape().await;
    assert_eq!(m.value(requests, &call("ok", "a/good", "a")), 2.0);
    assert_eq!(m.total(requests, &[]), 6.0);
    let ok_route = [("gen_ai_request_model", "ok")];
    assert_eq!(m.value(&format!("{duration}_count"), &ok_route), 2.0);
    assert_eq!(m.value(attempts, &attempt("a/good", "ok")), 2.0);
    assert_eq!(m.value(attempt_duration, &model("a/good")), 2.0);
    assert_eq!(
        m.value(tokens, &ok("input")),
        2.0 * usage["prompt_tokens"].as_f64().unwrap()
    );
    assert_eq!(m.total(&format!("{ttft}_count"), &[]), 1.0);
    let ttft_of = |route: &str| format!("{ttft}_count{{gen_ai_request_model=\"{route}\"");
    assert!(m.text.contains(&ttft_of("stream")), "{}", m.text);
    assert!(!m.text.contains(&ttft_of("ok")), "{}", m.text);
}

#[tokio::test]
async fn models_a_client_makes_up_share_one_other_label() {
    let (a, b) = mocks().await;
    let gw = Gateway::start(&config(&a, &b, "allow_unlisted_models = true")).await;

    // No provider for two of them; provider a's mock answers the other.
    for model in ["made-up-1", "a/made-up-2", "x\"y"] {
        gw.chat(model).await;
    }

    let m = gw.scrape().await;
    assert!(!m.text.contains("made-up"), "{}", m.text);
    let other = [("gen_ai_request_model", "other")];
    assert_eq!(m.total("llm_fallback_requests_total", &other), 3.0);
    assert_eq!(m.total("llm_fallback_requests_total", &[]), 3.0);
    let served = [
        ("gen_ai_request_model", "other"),
        ("gen_ai_response_model", "other"),
        ("gen_ai_provider_name", "other"),
        ("http_response_status_code", "200"),
    ];
    assert_eq!(m.value("llm_fallback_requests_total", &served), 1.0);
    let attempts = "llm_fallback_upstream_attempts_total";
    assert_eq!(m.total(attempts, &[("gen_ai_request_model", "other")]), 3.0);
}

#[tokio::test]
async fn metrics_need_the_client_key_unless_opened_and_can_be_turned_off() {
    let (a, b) = mocks().await;
    let gw = Gateway::start(&config(&a, &b, "")).await;
    assert_eq!(
        gw.scrape_with(None).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        gw.scrape_with(Some("wrong")).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(gw.scrape_with(Some(KEY)).await.status(), StatusCode::OK);

    let open = Gateway::start(&config(&a, &b, "metrics_auth = false")).await;
    assert_eq!(open.scrape_with(None).await.status(), StatusCode::OK);
    // The API itself still needs the key.
    let r = open
        .http
        .get(format!("{}/v1/models", open.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    let off = Gateway::start(&config(&a, &b, "metrics = false")).await;
    assert_eq!(
        off.scrape_with(Some(KEY)).await.status(),
        StatusCode::NOT_FOUND
    );
}
