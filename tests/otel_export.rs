//! The `llm-fallback` binary exporting traces over OTLP (HTTP/protobuf) to a
//! local receiver on 127.0.0.1, as an operator runs it: the standard
//! variables turn it on, `check` tells where spans go, and the spans of the
//! last calls are flushed when the process stops on SIGTERM.
#![cfg(feature = "gateway")]

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_llm-fallback");
/// How long the process gets to start, answer or stop (a deadline, not a sleep).
const PATIENCE: Duration = Duration::from_secs(20);

/// Every request the receiver got: its path, content type and body.
type Received = Arc<Mutex<Vec<(String, String, Bytes)>>>;

/// An OTLP/HTTP receiver on 127.0.0.1 that keeps what it is sent.
async fn receiver() -> (String, Received) {
    let received = Received::default();
    let keep = |path: &'static str| {
        move |State(r): State<Received>, headers: HeaderMap, body: Bytes| async move {
            let content_type = headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            r.lock()
                .unwrap()
                .push((path.to_owned(), content_type, body));
            "" // An empty ExportTraceServiceResponse: all accepted.
        }
    };
    let app = axum::Router::new()
        .route("/v1/traces", post(keep("/v1/traces")))
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, received)
}

fn command(args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args).env_remove("RUST_LOG").kill_on_drop(true);
    for var in [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_SERVICE_NAME",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_SDK_DISABLED",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn spans_reach_an_otlp_receiver_with_the_callers_trace_and_are_flushed_on_sigterm() {
    let (base, received) = receiver().await;
    let mut child = command(&["--listen", "127.0.0.1:0", "--log-format", "json"])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &base)
        .env("OTEL_SERVICE_NAME", "gateway-under-test")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    let addr = tokio::time::timeout(PATIENCE, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            seen.push(line.clone());
            if line.contains("gateway listening") {
                let v: serde_json::Value = serde_json::from_str(&line).unwrap();
                return v["addr"].as_str().unwrap().to_owned();
            }
        }
        panic!("stderr closed before listening:\n{}", seen.join("\n"))
    })
    .await
    .expect("the gateway starts");
    let exporting = seen
        .iter()
        .find(|l| l.contains("exporting traces"))
        .expect("a line saying where traces go");
    assert!(
        exporting.contains(&format!("{base}/v1/traces")),
        "{exporting}"
    );

    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    let r = reqwest::Client::new()
        .post(format!("http://{addr}/v1/chat/completions"))
        .header("traceparent", format!("00-{trace_id}-b7ad6b7169203331-01"))
        .json(&serde_json::json!({
            "model": "demo",
            "messages": [{"role": "user", "content": "a private prompt"}],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        received.lock().unwrap().is_empty(),
        "batched, not sent per span"
    );

    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(PATIENCE, child.wait())
        .await
        .expect("the gateway stops")
        .unwrap();
    assert!(status.success(), "{status}");

    let received = received.lock().unwrap().clone();
    assert!(!received.is_empty(), "no export on shutdown");
    let mut all = Vec::new();
    for (path, content_type, body) in &received {
        assert_eq!(path, "/v1/traces");
        assert_eq!(content_type, "application/x-protobuf");
        all.extend_from_slice(body);
    }
    // Protobuf keeps ids as raw bytes and strings as UTF-8.
    let id: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&trace_id[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    for needle in [
        &id[..],
        b"gateway-under-test",
        b"chat demo",
        b"gen_ai.request.model",
        b"attempt",
    ] {
        assert!(
            contains(&all, needle),
            "{:?} not exported",
            String::from_utf8_lossy(needle)
        );
    }
    assert!(
        !contains(&all, b"a private prompt"),
        "message content exported"
    );
}

#[tokio::test]
async fn check_says_whether_and_where_traces_are_exported() {
    let out = command(&["check"])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318/")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(
            "Traces: exported over OTLP (HTTP/protobuf) to http://127.0.0.1:4318/v1/traces \
             as service `llm-fallback`"
        ),
        "{stdout}"
    );

    let out = command(&["check"])
        .env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://127.0.0.1:9/t")
        .env("OTEL_SERVICE_NAME", "edge")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("to http://127.0.0.1:9/t as service `edge`"),
        "{stdout}"
    );

    let out = command(&["check"]).output().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(
            "Traces: not exported (OTEL_EXPORTER_OTLP_ENDPOINT and \
             OTEL_EXPORTER_OTLP_TRACES_ENDPOINT are not set, or OTEL_SDK_DISABLED is true)"
        ),
        "{stdout}"
    );
}

#[tokio::test]
async fn a_protocol_other_than_http_protobuf_is_refused_at_start() {
    let out = command(&["--listen", "127.0.0.1:0"])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
        .output();
    let out = tokio::time::timeout(PATIENCE, out)
        .await
        .expect("it stops by itself")
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "OTEL_EXPORTER_OTLP_PROTOCOL is \"grpc\": traces are exported over http/protobuf only"
        ),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_bad_endpoint_is_refused_at_start() {
    let out = command(&["--listen", "127.0.0.1:0"])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "not a url")
        .output();
    let out = tokio::time::timeout(PATIENCE, out)
        .await
        .expect("it stops by itself")
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot export traces to not a url/v1/traces"),
        "{stderr}"
    );
}
