//! Client- and provider-supplied strings never reach a log line raw: a
//! model id carrying a newline cannot forge a log line, and a role or a
//! provider message carrying a terminal escape cannot colour the terminal.
//! Driven over real sockets (the gateway's HTTP server in front of a stack
//! calling the mock provider server), every event captured at TRACE. A test
//! binary of its own, so no other test's subscriber interferes.
#![cfg(all(feature = "server", feature = "mock", feature = "openai"))]

mod log_capture;
use log_capture::LogBuffer;

use llm_fallback::mock::{MockServer, ServerReply};
use llm_fallback::providers::openai::OpenAi;
use llm_fallback::server::Server;
use llm_fallback::{CooldownLayer, Providers, RetryLayer, WeightedBalanceLayer};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tower::ServiceBuilder;

const FORGED: &str = "openai/demo\n2026-12-01T00:00:00Z  INFO chat completion model=FORGED";
const RED: &str = "\u{1b}[31m";

fn ask(model: &str, role: &str, stream: bool) -> Value {
    json!({"model": model, "messages": [{"role": role, "content": "hi"}], "stream": stream})
}

#[tokio::test]
async fn hostile_strings_from_clients_and_providers_are_logged_escaped() {
    let (logs, _guard) = LogBuffer::capture(tracing::Level::TRACE);

    let provider = MockServer::start().await;
    let hostile = format!("{RED}overloaded\n2026-12-01T00:00:00Z ERROR forged by the provider");
    provider.always("broken", ServerReply::error(500, "server_error", &hostile));
    let openai = OpenAi::builder()
        .base_url(provider.base_url())
        .api_key("sk-test")
        .build()
        .unwrap();
    let providers = Providers::builder()
        .provider("openai", openai)
        .build()
        .unwrap();
    let cooldown = CooldownLayer::new();
    let balance = WeightedBalanceLayer::builder()
        .route("chat", [("openai/gpt-4o", 1.0)])
        .health(cooldown.health())
        .build()
        .unwrap();
    let stack = ServiceBuilder::new()
        .layer(balance)
        .layer(cooldown)
        .layer(RetryLayer::new(0))
        .service(providers);
    let router = Server::builder(stack).build().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    let client = reqwest::Client::new();
    let url = format!("http://{addr}/v1/chat/completions");
    let mut statuses = Vec::new();
    for body in [
        ask(FORGED, "user", false),
        ask(FORGED, "user", true),
        ask("chat", RED, false),
        ask(&format!("openai/{RED}gpt"), "user", false),
        ask("openai/broken", "user", false),
    ] {
        let response = client.post(&url).json(&body).send().await.unwrap();
        statuses.push(response.status().as_u16());
        let _ = response.bytes().await;
    }
    // The role is refused before the stack; the broken provider fails.
    assert_eq!(statuses[2], 400, "{statuses:?}");
    assert_eq!(statuses[4], 502, "{statuses:?}");

    let logs = logs.text();
    // Each hostile string was logged (escaped), so the checks below bite.
    for escaped in [r"demo\n2026-12-01", r"\u{1b}[31m"] {
        assert!(logs.contains(escaped), "{escaped} not logged:\n{logs}");
    }
    if std::env::var_os("SHOW_LOGS").is_some() {
        println!("{logs}");
    }
    assert!(
        !logs.contains('\u{1b}'),
        "a raw escape reached the log:\n{logs}"
    );
    let forged: Vec<&str> = logs
        .lines()
        .filter(|line| line.starts_with("2026-12-01"))
        .collect();
    assert!(forged.is_empty(), "forged log lines: {forged:#?}");
}
