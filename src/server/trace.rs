//! The span of one chat call, named and filled after OpenTelemetry's GenAI
//! conventions, and (with the `otel` feature) continuing the caller's trace.
//!
//! Debug level, like the retry layer's per-attempt span: the text and JSON
//! logs leave both out at the default filter, and without a subscriber
//! that wants them they cost one check each. The gateway's trace exporter
//! enables them.

use http::HeaderMap;
use tracing::field::Empty;
use tracing::Span;

use super::headers::AttemptCounts;
use crate::chat::{Attempt, Usage};

/// The span of a call for `model` (client text: recorded as a `&str`, so
/// text logs escape it). With the `otel` feature, its parent is the
/// incoming W3C `traceparent` (and `tracestate`) when `headers` carry one.
pub(crate) fn call_span(model: &str, headers: &HeaderMap) -> Span {
    let span = tracing::debug_span!(
        "chat",
        otel.name = format!("chat {model}").as_str(),
        otel.kind = "server",
        gen_ai.operation.name = "chat",
        gen_ai.request.model = model,
        gen_ai.response.model = Empty,
        gen_ai.provider.name = Empty,
        gen_ai.usage.input_tokens = Empty,
        gen_ai.usage.output_tokens = Empty,
        http.response.status_code = Empty,
        error.type = Empty,
        otel.status_code = Empty,
        llm_fallback.upstream_calls = Empty,
        llm_fallback.retries = Empty,
        llm_fallback.fallbacks = Empty,
        llm_fallback.hedges = Empty,
        llm_fallback.skips = Empty,
    );
    #[cfg(feature = "otel")]
    continue_trace(&span, headers);
    #[cfg(not(feature = "otel"))]
    let _ = headers;
    span
}

/// What a call ended with, for [`record`].
pub(crate) struct Ended<'a> {
    pub(crate) served: &'a str,
    pub(crate) attempts: &'a [Attempt],
    pub(crate) usage: Option<&'a Usage>,
    pub(crate) status: u16,
    /// The error's kind, `None` for a complete answer.
    pub(crate) error: Option<&'a str>,
}

/// Writes how the call ended in its span.
pub(crate) fn record(span: &Span, ended: &Ended<'_>) {
    if span.is_disabled() {
        return;
    }
    let served = (!ended.served.is_empty()).then_some(ended.served);
    if let Some(served) = served {
        // The crate's model id, `provider/model`, as the metrics label it.
        span.record("gen_ai.response.model", served);
        if let Some((provider, _)) = served.split_once('/') {
            span.record("gen_ai.provider.name", provider);
        }
    }
    if let Some(usage) = ended.usage {
        span.record("gen_ai.usage.input_tokens", int(usage.prompt_tokens));
        span.record("gen_ai.usage.output_tokens", int(usage.completion_tokens));
    }
    if ended.status != 0 {
        span.record("http.response.status_code", i64::from(ended.status));
    }
    if let Some(kind) = ended.error {
        span.record("error.type", kind);
        span.record("otel.status_code", "error");
    }
    let counts = AttemptCounts::of(ended.attempts, served);
    span.record("llm_fallback.upstream_calls", int(counts.attempts));
    span.record("llm_fallback.retries", int(counts.retries()));
    span.record("llm_fallback.fallbacks", int(counts.fallbacks));
    span.record("llm_fallback.hedges", int(counts.hedges));
    let skips = ended.attempts.iter().filter(|a| !a.upstream).count();
    span.record("llm_fallback.skips", int(skips));
}

/// A count as a signed integer, saturating: OpenTelemetry's integers are
/// `i64`, and exporters show unsigned values as strings.
fn int<N: TryInto<i64>>(n: N) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

/// Makes the caller's trace context `span`'s parent. Skipped when no
/// OpenTelemetry layer sees the span (nothing is exported then).
#[cfg(feature = "otel")]
fn continue_trace(span: &Span, headers: &HeaderMap) {
    use opentelemetry::propagation::TextMapPropagator;
    use opentelemetry::trace::TraceContextExt;
    use opentelemetry_http::HeaderExtractor;
    use opentelemetry_sdk::propagation::TraceContextPropagator;
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    if span.is_disabled() || !headers.contains_key("traceparent") {
        return;
    }
    // A malformed `traceparent` extracts as no context: a new trace.
    let parent = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
    if parent.span().span_context().is_valid() {
        // Fails only without an OpenTelemetry layer: nothing to continue.
        let _ = span.set_parent(parent);
    }
}
