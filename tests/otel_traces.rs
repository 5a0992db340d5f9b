//! OpenTelemetry traces (the `otel` feature): a gateway on 127.0.0.1 in
//! front of mock provider servers, its spans collected by an in-memory
//! exporter through `tracing-opentelemetry`. One trace per call, continuing
//! the caller's `traceparent`; a child span per upstream attempt; the
//! attempt's `traceparent` sent to the provider.
//!
//! Each test installs its subscriber for its own thread (the default
//! current-thread runtime runs the gateway, the mocks and the client there).

mod metrics_support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use llm_fallback::mock::{MockServer, ServerReply};
use metrics_support::{providers, Gateway, KEY};
use opentelemetry::trace::{SpanId, SpanKind, TraceId, TracerProvider};
use opentelemetry::Value as OtelValue;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::Layer;

/// Spans as the exporter received them, in the order they ended.
#[derive(Clone, Debug, Default)]
struct Collected(Arc<Mutex<Vec<SpanData>>>);

impl SpanExporter for Collected {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.0.lock().unwrap().extend(batch);
        Ok(())
    }
}

impl Collected {
    fn spans(&self) -> Vec<SpanData> {
        self.0.lock().unwrap().clone()
    }

    /// Waits (polling, bounded) until a span named `name` has ended.
    async fn ended(&self, name: &str) -> Vec<SpanData> {
        for _ in 0..2000 {
            let spans = self.spans();
            if spans.iter().any(|s| s.name == name) {
                return spans;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        panic!("no span named {name:?} ended: {:#?}", self.spans());
    }
}

/// Exports the crate's spans (all levels, as the gateway binary does) to a
/// collector, for the current thread while the guard lives.
fn trace_to_memory() -> (
    Collected,
    SdkTracerProvider,
    tracing::subscriber::DefaultGuard,
) {
    let collected = Collected::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(collected.clone())
        .build();
    let layer = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("test"))
        .with_filter(filter_fn(|m| {
            m.is_span() && m.target().starts_with("llm_fallback")
        }));
    let guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(layer));
    (collected, provider, guard)
}

fn attr(span: &SpanData, key: &str) -> Option<OtelValue> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.clone())
}

fn text(span: &SpanData, key: &str) -> String {
    match attr(span, key) {
        Some(v) => v.as_str().into_owned(),
        None => panic!("span {} has no {key}: {:?}", span.name, span.attributes),
    }
}

fn int(span: &SpanData, key: &str) -> i64 {
    match attr(span, key) {
        Some(OtelValue::I64(n)) => n,
        other => panic!("span {} has no integer {key}: {other:?}", span.name),
    }
}

/// Whether `span` descends from `ancestor` in `spans`.
fn descends(spans: &[SpanData], span: &SpanData, ancestor: &SpanData) -> bool {
    let by_id: HashMap<SpanId, &SpanData> = spans
        .iter()
        .map(|s| (s.span_context.span_id(), s))
        .collect();
    let mut parent = span.parent_span_id;
    while let Some(p) = by_id.get(&parent) {
        if p.span_context.span_id() == ancestor.span_context.span_id() {
            return true;
        }
        parent = p.parent_span_id;
    }
    false
}

/// The trace id and parent span id of a `traceparent` header.
fn parse_traceparent(header: &str) -> (TraceId, SpanId) {
    let parts: Vec<&str> = header.split('-').collect();
    assert_eq!(parts.len(), 4, "{header}");
    assert_eq!(parts[0], "00", "{header}");
    (
        TraceId::from_hex(parts[1]).unwrap(),
        SpanId::from_hex(parts[2]).unwrap(),
    )
}

async fn gateway() -> (Gateway, MockServer, MockServer) {
    let a = MockServer::start().await;
    let b = MockServer::start().await;
    a.always("good", ServerReply::text("fine"));
    a.always("down", ServerReply::status(503));
    b.always("good", ServerReply::text("backup"));
    b.always(
        "streamer",
        ServerReply::text("one two three four").in_chunks(4),
    );
    let config = format!(
        r#"
        {}
        [routes]
        ok = ["a/good"]
        fall = ["a/down", "b/good"]
        stream = ["b/streamer"]
        [retry]
        max_retries = 0
        [server]
        api_key_env = "GW_KEY"
        "#,
        providers(&a, &b)
    );
    (Gateway::start(&config).await, a, b)
}

async fn call(gw: &Gateway, model: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = gw
        .http
        .post(format!("{}/v1/chat/completions", gw.base))
        .bearer_auth(KEY)
        .json(&json!({"model": model, "messages": [{"role": "user", "content": "hi there"}]}));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

const INCOMING_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const INCOMING_PARENT: &str = "00f067aa0ba902b7";

#[tokio::test]
async fn a_call_continues_the_callers_trace_with_a_span_per_attempt() {
    let (collected, _provider, _guard) = trace_to_memory();
    let (gw, a, b) = gateway().await;
    let traceparent = format!("00-{INCOMING_TRACE}-{INCOMING_PARENT}-01");
    let r = call(
        &gw,
        "fall",
        &[
            ("traceparent", &traceparent),
            ("tracestate", "vendor=opaque"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let usage = r.json::<Value>().await.unwrap()["usage"].clone();
    let spans = collected.ended("chat fall").await;

    // One trace: the caller's.
    let incoming = TraceId::from_hex(INCOMING_TRACE).unwrap();
    for span in &spans {
        assert_eq!(span.span_context.trace_id(), incoming, "{}", span.name);
    }
    let calls: Vec<&SpanData> = spans.iter().filter(|s| s.name == "chat fall").collect();
    assert_eq!(calls.len(), 1, "{spans:#?}");
    let chat = calls[0];
    assert_eq!(
        chat.parent_span_id,
        SpanId::from_hex(INCOMING_PARENT).unwrap()
    );
    assert!(chat.parent_span_is_remote);
    assert_eq!(chat.span_kind, SpanKind::Server);
    assert_eq!(chat.span_context.trace_state().header(), "vendor=opaque");
    assert_eq!(text(chat, "gen_ai.operation.name"), "chat");
    assert_eq!(text(chat, "gen_ai.request.model"), "fall");
    assert_eq!(text(chat, "gen_ai.response.model"), "b/good");
    assert_eq!(text(chat, "gen_ai.provider.name"), "b");
    assert_eq!(
        int(chat, "gen_ai.usage.input_tokens"),
        usage["prompt_tokens"].as_i64().unwrap()
    );
    assert_eq!(
        int(chat, "gen_ai.usage.output_tokens"),
        usage["completion_tokens"].as_i64().unwrap()
    );
    assert_eq!(int(chat, "http.response.status_code"), 200);
    assert_eq!(int(chat, "llm_fallback.upstream_calls"), 2);
    assert_eq!(int(chat, "llm_fallback.fallbacks"), 1);
    assert_eq!(int(chat, "llm_fallback.retries"), 0);
    assert_eq!(int(chat, "llm_fallback.hedges"), 0);
    assert_eq!(attr(chat, "error.type"), None);

    // A child span per attempt, in order, with its outcome.
    let attempts: Vec<&SpanData> = spans.iter().filter(|s| s.name == "attempt").collect();
    let seen: Vec<_> = attempts
        .iter()
        .map(|s| {
            assert!(
                descends(&spans, s, chat),
                "{} is not under the call",
                s.name
            );
            assert_eq!(s.span_kind, SpanKind::Client);
            assert_eq!(attr(s, "hedge"), Some(OtelValue::Bool(false)));
            (
                text(s, "gen_ai.provider.name"),
                text(s, "gen_ai.request.model"),
                text(s, "outcome"),
                attr(s, "http.response.status_code"),
                attr(s, "error.type").map(|v| v.as_str().into_owned()),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (
                "a".to_owned(),
                "a/down".to_owned(),
                "server".to_owned(),
                Some(OtelValue::I64(503)),
                Some("server".to_owned())
            ),
            (
                "b".to_owned(),
                "b/good".to_owned(),
                "ok".to_owned(),
                None,
                None
            ),
        ]
    );

    // Each provider saw the trace, with its attempt's span as the parent.
    for (server, attempt) in [(&a, attempts[0]), (&b, attempts[1])] {
        let calls = server.calls();
        assert_eq!(calls.len(), 1);
        let header = calls[0]
            .header("traceparent")
            .expect("a traceparent upstream");
        let (trace, parent) = parse_traceparent(header);
        assert_eq!(trace, incoming);
        assert_eq!(parent, attempt.span_context.span_id());
        assert_eq!(calls[0].header("tracestate"), Some("vendor=opaque"));
    }
}

#[tokio::test]
async fn a_call_without_a_traceparent_or_with_a_malformed_one_starts_a_trace() {
    let (collected, _provider, _guard) = trace_to_memory();
    let (gw, a, _b) = gateway().await;
    for headers in [vec![], vec![("traceparent", "00-not-a-trace-01")]] {
        collected.0.lock().unwrap().clear();
        a.clear_calls();
        assert_eq!(call(&gw, "ok", &headers).await.status(), StatusCode::OK);
        let spans = collected.ended("chat ok").await;
        let calls: Vec<&SpanData> = spans.iter().filter(|s| s.name == "chat ok").collect();
        assert_eq!(calls.len(), 1, "{spans:#?}");
        let chat = calls[0];
        let trace = chat.span_context.trace_id();
        assert_ne!(trace, TraceId::INVALID);
        assert_ne!(trace, TraceId::from_hex(INCOMING_TRACE).unwrap());
        assert_eq!(chat.parent_span_id, SpanId::INVALID);
        for span in &spans {
            assert_eq!(span.span_context.trace_id(), trace, "{}", span.name);
        }
        let attempts: Vec<&SpanData> = spans.iter().filter(|s| s.name == "attempt").collect();
        assert_eq!(attempts.len(), 1);
        assert_eq!(text(attempts[0], "outcome"), "ok");
        let upstream = a.calls()[0].header("traceparent").map(parse_traceparent);
        assert_eq!(upstream, Some((trace, attempts[0].span_context.span_id())));
    }
}

#[tokio::test]
async fn without_an_opentelemetry_layer_providers_get_no_traceparent() {
    let (gw, a, _b) = gateway().await;
    let traceparent = format!("00-{INCOMING_TRACE}-{INCOMING_PARENT}-01");
    let r = call(&gw, "ok", &[("traceparent", &traceparent)]).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(a.calls()[0].header("traceparent"), None);
}

#[tokio::test]
async fn a_streamed_calls_span_ends_with_the_stream_and_holds_its_usage() {
    let (collected, _provider, _guard) = trace_to_memory();
    let (gw, _a, b) = gateway().await;
    let body = json!({"model": "stream", "stream": true,
        "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": "hi there"}]});
    let r = gw
        .http
        .post(format!("{}/v1/chat/completions", gw.base))
        .bearer_auth(KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let sse = r.text().await.unwrap();
    assert!(sse.ends_with("data: [DONE]\n\n"), "{sse}");
    let usage: Value = sse
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .find_map(|c| c.get("usage").filter(|u| !u.is_null()).cloned())
        .expect("a usage chunk");
    let spans = collected.ended("chat stream").await;
    let chat = spans.iter().find(|s| s.name == "chat stream").unwrap();
    assert_eq!(
        int(chat, "gen_ai.usage.output_tokens"),
        usage["completion_tokens"].as_i64().unwrap()
    );
    assert_eq!(text(chat, "gen_ai.response.model"), "b/streamer");
    let attempt = spans.iter().find(|s| s.name == "attempt").unwrap();
    assert!(descends(&spans, attempt, chat));
    let upstream = b.calls()[0].header("traceparent").map(parse_traceparent);
    assert_eq!(
        upstream,
        Some((chat.span_context.trace_id(), attempt.span_context.span_id()))
    );
}

#[tokio::test(start_paused = true)]
async fn a_hedged_racer_has_its_own_attempt_span_and_the_loser_says_cancelled() {
    use llm_fallback::layers::hedge::Hedge;
    use llm_fallback::layers::retry::RetryLayer;
    use llm_fallback::mock::{MockProvider, MockReply};
    use llm_fallback::{ChatRequest, Message, ProviderFallbackLayer, RouteOptions};
    use tower::{ServiceBuilder, ServiceExt};

    let (collected, _provider, _guard) = trace_to_memory();
    let upstream = MockProvider::new();
    upstream.always(
        "slow/m",
        MockReply::text("late").after(Duration::from_secs(20)),
    );
    upstream.always(
        "fast/m",
        MockReply::text("quick").after(Duration::from_millis(100)),
    );
    let fallback = ProviderFallbackLayer::builder()
        .group(["slow/m", "fast/m"])
        .options(RouteOptions::new().hedge(Hedge::new(Duration::from_millis(500))))
        .build()
        .unwrap();
    let retry = RetryLayer::builder().max_retries(0).build().unwrap();
    let service = ServiceBuilder::new()
        .layer(fallback)
        .layer(retry)
        .service(upstream);
    let request = ChatRequest::new("slow/m", [Message::user("hi")]);
    let response = service.oneshot(request).await.unwrap();
    assert_eq!(response.model(), "fast/m");

    let spans = collected.spans();
    let mut attempts: Vec<_> = spans
        .iter()
        .filter(|s| s.name == "attempt")
        .map(|s| {
            (
                text(s, "model"),
                attr(s, "hedge"),
                text(s, "outcome"),
                attr(s, "latency_ms"),
            )
        })
        .collect();
    attempts.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        attempts,
        [
            (
                "fast/m".to_owned(),
                Some(OtelValue::Bool(true)),
                "ok".to_owned(),
                Some(OtelValue::F64(100.0))
            ),
            (
                "slow/m".to_owned(),
                Some(OtelValue::Bool(false)),
                "cancelled".to_owned(),
                Some(OtelValue::F64(600.0))
            ),
        ]
    );
    let trace = spans[0].span_context.trace_id();
    assert!(spans.iter().all(|s| s.span_context.trace_id() == trace));
}
