//! Traces: the gateway's call and attempt spans exported over OTLP
//! (HTTP/protobuf) when the standard variables name a collector (the
//! `gateway` feature includes `otel`). With neither endpoint variable set,
//! nothing is installed and nothing is exported.

/// The variable naming the collector's traces URL, used as is.
pub(crate) const TRACES_ENDPOINT_VAR: &str = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
/// The variable naming the collector's base URL (`/v1/traces` is appended).
pub(crate) const ENDPOINT_VAR: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
/// The variable naming the service in the exported resource.
pub(crate) const SERVICE_NAME_VAR: &str = "OTEL_SERVICE_NAME";
/// `true` turns every OpenTelemetry export off (the SDK's switch).
pub(crate) const DISABLED_VAR: &str = "OTEL_SDK_DISABLED";
/// The protocol variables: only `http/protobuf` is spoken.
const PROTOCOL_VARS: [&str; 2] = [
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
];
/// The service name without `OTEL_SERVICE_NAME`.
pub(crate) const DEFAULT_SERVICE_NAME: &str = "llm-fallback";

/// Where spans go, per the environment: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`
/// as is, else `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces` (the OTLP
/// rules); `None` when both are unset or empty, or `OTEL_SDK_DISABLED` is
/// `true`.
pub(crate) fn endpoint() -> Option<String> {
    endpoint_from(|name| std::env::var(name).ok())
}

fn endpoint_from(var: impl Fn(&str) -> Option<String>) -> Option<String> {
    let var = |name: &str| {
        var(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    if var(DISABLED_VAR).is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return None;
    }
    if let Some(url) = var(TRACES_ENDPOINT_VAR) {
        return Some(url);
    }
    var(ENDPOINT_VAR).map(|base| format!("{}/v1/traces", base.trim_end_matches('/')))
}

/// An error naming the protocol variable that asks for anything but
/// `http/protobuf` (gRPC and JSON are not built in).
pub(crate) fn check_protocol() -> Result<(), String> {
    check_protocol_from(|name| std::env::var(name).ok())
}

fn check_protocol_from(var: impl Fn(&str) -> Option<String>) -> Result<(), String> {
    for name in PROTOCOL_VARS {
        if let Some(value) = var(name).filter(|v| !v.trim().is_empty()) {
            if value.trim() != "http/protobuf" {
                return Err(format!(
                    "{name} is {value:?}: traces are exported over http/protobuf only"
                ));
            }
        }
    }
    Ok(())
}

/// The service name: `OTEL_SERVICE_NAME`, else `llm-fallback`.
pub(crate) fn service_name() -> String {
    std::env::var(SERVICE_NAME_VAR)
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| DEFAULT_SERVICE_NAME.to_owned())
}

/// What `llm-fallback check` says about traces.
pub(crate) fn describe() -> String {
    match (endpoint(), check_protocol()) {
        (Some(_), Err(e)) => format!("serve would refuse to start: {e}"),
        (Some(url), Ok(())) => format!(
            "exported over OTLP (HTTP/protobuf) to {url} as service `{}`",
            service_name()
        ),
        (None, _) => format!(
            "not exported ({ENDPOINT_VAR} and {TRACES_ENDPOINT_VAR} are not set, \
             or {DISABLED_VAR} is true)"
        ),
    }
}

pub(crate) use exporter::Traces;

mod exporter {
    use opentelemetry::trace::TracerProvider;
    use opentelemetry_otlp::{Protocol, WithExportConfig};
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use opentelemetry_sdk::Resource;
    use tracing::Level;
    use tracing_subscriber::filter::filter_fn;
    use tracing_subscriber::{Layer, Registry};

    /// The exporting tracer provider, running.
    #[derive(Debug)]
    pub(crate) struct Traces {
        provider: SdkTracerProvider,
        endpoint: String,
    }

    impl Traces {
        /// Starts exporting to `endpoint`; returns the layer that feeds
        /// the exporter. Call outside the tokio runtime: the exporter's
        /// batch processor and blocking HTTP client run on threads of
        /// their own.
        pub(crate) fn start(
            endpoint: String,
        ) -> Result<(Traces, Box<dyn Layer<Registry> + Send + Sync>), String> {
            super::check_protocol()?;
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .with_endpoint(endpoint.clone())
                .build()
                .map_err(|e| format!("cannot export traces to {endpoint}: {e}"))?;
            let resource = Resource::builder()
                .with_service_name(super::service_name())
                .build();
            let provider = SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(resource)
                .build();
            let tracer = provider.tracer("llm-fallback");
            // The crate's spans at every level (the call and attempt spans
            // are debug, so the logs leave them out), other crates' none;
            // warnings and errors as span events.
            let filter = filter_fn(|meta| match meta.is_span() {
                true => meta.target().starts_with("llm_fallback"),
                false => *meta.level() <= Level::WARN,
            });
            let layer = tracing_opentelemetry::layer()
                .with_tracer(tracer)
                .with_filter(filter)
                .boxed();
            Ok((Traces { provider, endpoint }, layer))
        }

        /// Exports what is still buffered and stops (blocking: call
        /// outside the runtime).
        pub(crate) fn shutdown(self) {
            if let Err(e) = self.provider.shutdown() {
                eprintln!(
                    "llm-fallback: traces to {} were not all exported on shutdown: {e}",
                    self.endpoint
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn the_traces_endpoint_wins_and_is_used_as_is() {
        let vars = [
            (TRACES_ENDPOINT_VAR, "http://collector:4318/custom"),
            (ENDPOINT_VAR, "http://other:4318"),
        ];
        assert_eq!(
            endpoint_from(env(&vars)).as_deref(),
            Some("http://collector:4318/custom")
        );
    }

    #[test]
    fn the_base_endpoint_gets_the_traces_path() {
        for base in ["http://collector:4318", "http://collector:4318/"] {
            let vars = [(ENDPOINT_VAR, base), (TRACES_ENDPOINT_VAR, " ")];
            assert_eq!(
                endpoint_from(env(&vars)).as_deref(),
                Some("http://collector:4318/v1/traces")
            );
        }
    }

    #[test]
    fn no_endpoint_or_a_disabled_sdk_means_no_export() {
        assert_eq!(endpoint_from(env(&[])), None);
        assert_eq!(endpoint_from(env(&[(ENDPOINT_VAR, "")])), None);
        let vars = [(ENDPOINT_VAR, "http://c:4318"), (DISABLED_VAR, "TRUE")];
        assert_eq!(endpoint_from(env(&vars)), None);
        let vars = [(ENDPOINT_VAR, "http://c:4318"), (DISABLED_VAR, "false")];
        assert!(endpoint_from(env(&vars)).is_some());
    }

    #[test]
    fn only_http_protobuf_is_accepted() {
        assert_eq!(check_protocol_from(env(&[])), Ok(()));
        let ok = [(PROTOCOL_VARS[1], "http/protobuf")];
        assert_eq!(check_protocol_from(env(&ok)), Ok(()));
        let grpc = [(PROTOCOL_VARS[0], "grpc")];
        let e = check_protocol_from(env(&grpc)).unwrap_err();
        assert_eq!(
            e,
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL is \"grpc\": traces are exported over http/protobuf only"
        );
    }
}
