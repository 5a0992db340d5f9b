//! The gateway over real sockets: a stack built from a TOML config, served on
//! 127.0.0.1:0 in front of mock provider servers, driven by an HTTP client
//! (and by the official OpenAI Python client, when installed).
#![cfg(all(
    feature = "server",
    feature = "mock",
    feature = "openai",
    feature = "toml"
))]

mod answers;
mod python;
mod raw;
mod routes;

#[path = "../../src/bin/llm-fallback/demo.rs"]
mod demo;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use llm_fallback::mock::{MockServer, ServerReply};
use llm_fallback::server::{self, ATTEMPTS_HEADER, FALLBACKS_HEADER, MODEL_HEADER};
use llm_fallback::{Config, Stack};
use reqwest::{RequestBuilder, Response, StatusCode};
use serde_json::{json, Value};
use tokio::sync::oneshot;

pub(crate) const KEY: &str = "gw-test-key";

/// A gateway serving on 127.0.0.1:0 until dropped.
pub(crate) struct Gateway {
    base: String,
    http: reqwest::Client,
    /// Chat requests the gateway received.
    chats: Arc<AtomicUsize>,
    _stop: oneshot::Sender<()>,
}

impl Gateway {
    async fn start(config: Config, env: &[(&str, &str)]) -> Gateway {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let stack = Stack::builder()
            .config(config)
            .env(move |var| env.get(var).cloned())
            .build()
            .unwrap_or_else(|e| panic!("the config is valid:\n{e}"));
        let chats = Arc::new(AtomicUsize::new(0));
        let counter = chats.clone();
        let router = stack
            .server()
            .build()
            .unwrap()
            .layer(axum::middleware::from_fn(
                move |request: axum::extract::Request, next: axum::middleware::Next| {
                    if request.uri().path() == "/v1/chat/completions" {
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                    next.run(request)
                },
            ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(server::serve(
            listener,
            router,
            async {
                let _ = stopped.await;
            },
            Duration::from_secs(1),
        ));
        Gateway {
            base,
            http: reqwest::Client::new(),
            chats,
            _stop: stop,
        }
    }

    fn post(&self, body: &Value) -> RequestBuilder {
        self.http
            .post(format!("{}/v1/chat/completions", self.base))
            .bearer_auth(KEY)
            .json(body)
    }

    async fn chat(&self, model: &str) -> Response {
        self.post(&json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap()
    }
}

pub(crate) fn header<'a>(r: &'a Response, name: &str) -> &'a str {
    r.headers().get(name).map_or("", |v| v.to_str().unwrap())
}

/// Two providers on two mock servers (`backup` as an Azure resource), and
/// routes that exercise each outcome. Keep the servers: dropping one stops it.
pub(crate) async fn fixture() -> (Gateway, MockServer, MockServer) {
    let primary = MockServer::start().await;
    let backup = MockServer::start().await;
    primary.always("gpt-4o-mini", ServerReply::status(503));
    for server in [&primary, &backup] {
        server.always(
            "limited",
            ServerReply::error(429, "rate_limit_exceeded", "slow down")
                .with_retry_after(Duration::from_secs(7)),
        );
        server.always("broken", ServerReply::status(500));
    }
    primary.always(
        "picky",
        ServerReply::error(400, "invalid_value", "bad temperature"),
    );
    primary.always(
        "slow",
        ServerReply::text("late").after(Duration::from_secs(30)),
    );
    let toml = format!(
        r#"
        [providers.primary]
        kind = "openai"
        base_url = "{}"
        api_key_env = "PRIMARY_KEY"
        [providers.azure]
        kind = "azure"
        endpoint = "{}"
        api_key_env = "AZURE_KEY"

        [routes]
        chat = ["primary/gpt-4o-mini", "azure/gpt-4o-mini"]
        limited = ["primary/limited", "azure/limited"]
        broken = ["primary/broken", "azure/broken"]
        picky = ["primary/picky", "azure/picky"]
        slow = ["primary/slow"]

        [retry]
        max_retries = 0
        [cooldown]
        enabled = false
        [timeout]
        attempt = {{ models = {{ "primary/slow" = "300ms" }} }}
        [server]
        api_key_env = "GW_KEY"
        body_limit = 65536
        "#,
        primary.base_url(),
        backup.endpoint()
    );
    let config = Config::from_toml_str(&toml).unwrap();
    let env = [("PRIMARY_KEY", "pk"), ("AZURE_KEY", "ak"), ("GW_KEY", KEY)];
    (Gateway::start(config, &env).await, primary, backup)
}
