//! A gateway built from a TOML config, served on 127.0.0.1:0 in front of
//! two mock providers (`a` and `b`), and a parser of what `/metrics` says.
#![allow(dead_code)]

pub mod prometheus_text;

use std::collections::HashMap;
use std::time::Duration;

use llm_fallback::mock::{MockServer, ServerReply};
use llm_fallback::server;
use llm_fallback::{Config, Stack};
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use tokio::sync::oneshot;

pub use prometheus_text::Scrape;

pub const KEY: &str = "metrics-test-key";

/// A gateway serving on 127.0.0.1:0 until dropped.
pub struct Gateway {
    pub base: String,
    pub http: reqwest::Client,
    _stop: oneshot::Sender<()>,
}

impl Gateway {
    pub async fn start(toml: &str) -> Gateway {
        let config = Config::from_toml_str(toml).unwrap();
        let env: HashMap<&str, &str> = [("A_KEY", "ak"), ("B_KEY", "bk"), ("GW_KEY", KEY)].into();
        let stack = Stack::builder()
            .config(config)
            .env(move |var| env.get(var).map(|v| v.to_string()))
            .build()
            .unwrap_or_else(|e| panic!("the config is valid:\n{e}"));
        let router = stack.server().build().unwrap();
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
            _stop: stop,
        }
    }

    pub async fn post(&self, body: Value) -> Response {
        self.http
            .post(format!("{}/v1/chat/completions", self.base))
            .bearer_auth(KEY)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn chat(&self, model: &str) -> Response {
        self.post(json!({"model": model, "messages": [{"role": "user", "content": "hi there"}]}))
            .await
    }

    pub async fn scrape_with(&self, key: Option<&str>) -> Response {
        let mut request = self.http.get(format!("{}/metrics", self.base));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        request.send().await.unwrap()
    }

    pub async fn scrape(&self) -> Scrape {
        let r = self.scrape_with(Some(KEY)).await;
        assert_eq!(r.status(), StatusCode::OK);
        let content_type = r.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(
            content_type.starts_with("text/plain; version=0.0.4"),
            "{content_type}"
        );
        Scrape::parse(&r.text().await.unwrap())
    }
}

/// The `[providers]` of `a` and `b`, for a config.
pub fn providers(a: &MockServer, b: &MockServer) -> String {
    format!(
        r#"
        [providers.a]
        kind = "openai"
        base_url = "{}"
        api_key_env = "A_KEY"
        [providers.b]
        kind = "openai"
        base_url = "{}"
        api_key_env = "B_KEY"
        "#,
        a.base_url(),
        b.base_url()
    )
}

/// Provider `a` (good, down, flaky) and `b` (good, streamer).
pub async fn mocks() -> (MockServer, MockServer) {
    let a = MockServer::start().await;
    let b = MockServer::start().await;
    a.always("good", ServerReply::text("fine"));
    a.always("down", ServerReply::status(503));
    a.script(
        "flaky",
        [ServerReply::status(503), ServerReply::text("second time")],
    );
    b.always("good", ServerReply::text("backup"));
    b.always(
        "streamer",
        ServerReply::text("one two three four")
            .in_chunks(4)
            .first_token_after(Duration::from_millis(20)),
    );
    (a, b)
}
