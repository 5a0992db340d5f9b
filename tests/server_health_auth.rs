//! With a client key set, readiness (which lists every route, model id and
//! cooldown) answers only with the key; liveness stays open for load
//! balancers. Over a real socket.
#![cfg(all(feature = "server", feature = "mock"))]

use http::StatusCode;
use llm_fallback::mock::MockProvider;
use llm_fallback::server::Server;
use serde_json::Value;
use tokio::net::TcpListener;

async fn start(key: Option<&str>) -> String {
    let mut builder =
        Server::builder(MockProvider::new()).route("smart", ["openai/gpt-4o", "azure/gpt-4o"]);
    if let Some(key) = key {
        builder = builder.api_key(key);
    }
    let router = builder.build().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

#[tokio::test]
async fn readiness_needs_the_key_when_one_is_set_and_liveness_never_does() {
    let base = start(Some("sk-gateway")).await;
    let http = reqwest::Client::new();
    let get = |path: &str, key: Option<&str>| {
        let mut request = http.get(format!("{base}{path}"));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        request.send()
    };

    for key in [None, Some("sk-wrong")] {
        let refused = get("/health/ready", key).await.unwrap();
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED, "key {key:?}");
        let body = refused.text().await.unwrap();
        assert!(!body.contains("gpt-4o"), "no model listed: {body}");
    }

    let ready = get("/health/ready", Some("sk-gateway")).await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    let body: Value = ready.json().await.unwrap();
    let available = &body["routes"]["smart"]["available"];
    assert_eq!(available.as_array().map(Vec::len), Some(2), "{body}");

    let live = get("/health", None).await.unwrap();
    assert_eq!(live.status(), StatusCode::OK, "load balancers need no key");
}

#[tokio::test]
async fn without_a_key_readiness_stays_open() {
    let base = start(None).await;
    let ready = reqwest::get(format!("{base}/health/ready")).await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
}
