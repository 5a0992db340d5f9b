//! The W3C trace context sent to providers (the `otel` feature): the
//! `traceparent` and `tracestate` of the span the request is made in, the
//! attempt's (or its `key` span's, with several keys).

use http::HeaderMap;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TraceContextExt;
use opentelemetry_http::HeaderInjector;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The trace headers of the current span: none when no OpenTelemetry layer
/// records it (nothing is exported then, and nothing is sent).
pub(crate) fn trace_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    let span = tracing::Span::current();
    if span.is_disabled() {
        return headers;
    }
    let cx = span.context();
    if cx.span().span_context().is_valid() {
        TraceContextPropagator::new().inject_context(&cx, &mut HeaderInjector(&mut headers));
    }
    headers
}
