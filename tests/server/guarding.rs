//! What the server refuses before any upstream call: missing keys, oversized
//! or malformed bodies, unknown models and URLs, invalid options.

use super::*;

#[tokio::test]
async fn the_api_key_is_required_and_checked() {
    let mock = MockProvider::new();
    let http = start(
        Server::builder(mock.clone())
            .api_key("sk-gateway")
            .build()
            .unwrap(),
    )
    .await;
    let url = format!("{}/v1/chat/completions", http.base);

    let response = http.chat(&ask("openai/a")).await;
    assert_eq!(header(&response, "www-authenticate"), Some("Bearer"));
    let (status, _, error) = error_of(response).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error["code"], "missing_api_key");

    let wrong = http
        .client
        .post(&url)
        .bearer_auth("sk-gatewaz")
        .json(&ask("openai/a"));
    let (status, _, error) = error_of(wrong.send().await.unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error["code"], "invalid_api_key");
    assert!(!error["message"].as_str().unwrap().contains("sk-"));

    let models = http.get("/v1/models").await;
    assert_eq!(models.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        mock.calls().len(),
        0,
        "refused requests never reach the stack"
    );

    let right = http
        .client
        .post(&url)
        .bearer_auth("sk-gateway")
        .json(&ask("openai/a"));
    assert_eq!(right.send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        http.get("/health").await.status(),
        StatusCode::OK,
        "probes need no key"
    );
}

#[tokio::test]
async fn an_oversized_body_is_a_413_and_the_server_keeps_serving() {
    let mock = MockProvider::new();
    let http = start(
        Server::builder(mock.clone())
            .body_limit(1024)
            .build()
            .unwrap(),
    )
    .await;
    let mut big = ask("openai/a");
    big["messages"][0]["content"] = json!("x".repeat(2048));

    let (status, _, error) = error_of(http.chat(&big).await).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error["code"], "request_too_large");
    assert!(error["message"].as_str().unwrap().contains("1024 bytes"));

    // Without a Content-Length (chunked), the limit holds while reading.
    let bytes = serde_json::to_vec(&big).unwrap();
    let chunked = reqwest::Body::wrap_stream(futures_util::stream::iter(
        bytes
            .chunks(256)
            .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
            .collect::<Vec<_>>(),
    ));
    let response = http
        .client
        .post(format!("{}/v1/chat/completions", http.base))
        .header("content-type", "application/json")
        .body(chunked)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(mock.calls().len(), 0);
    http.still_serves().await;
}

#[tokio::test]
async fn the_default_body_limit_admits_a_3_mib_prompt() {
    // axum's own extractors stop at 2 MiB; the documented default is 4 MiB.
    let mock = MockProvider::new();
    let http = start(Server::builder(mock.clone()).build().unwrap()).await;
    let mut big = ask("openai/a");
    big["messages"][0]["content"] = json!("x".repeat(3 << 20));
    assert_eq!(http.chat(&big).await.status(), StatusCode::OK);
    assert_eq!(server::DEFAULT_BODY_LIMIT, 4 << 20);
}

#[tokio::test]
async fn bad_requests_get_clear_4xx_errors_and_the_server_keeps_serving() {
    let mock = MockProvider::new();
    let http = start(Server::builder(mock.clone()).build().unwrap()).await;
    let url = format!("{}/v1/chat/completions", http.base);
    let raw = |content_type: Option<&str>, body: &str| {
        let mut request = http.client.post(&url).body(body.to_owned());
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        request
    };
    let json = Some("application/json");
    let cases = [
        (
            raw(json, r#"{"model": "openai/a", "messages": ["#),
            400,
            "invalid_json",
            Value::Null,
        ),
        (raw(json, r#"[1, 2]"#), 400, "invalid_json", Value::Null),
        (
            raw(json, r#"{"messages": [{"role": "user", "content": "hi"}]}"#),
            400,
            "missing_required_parameter",
            json!("model"),
        ),
        (
            raw(json, r#"{"model": "openai/a"}"#),
            400,
            "missing_required_parameter",
            json!("messages"),
        ),
        (
            raw(json, r#"{"model": "openai/a", "messages": []}"#),
            400,
            "invalid_type",
            json!("messages"),
        ),
        (
            raw(
                json,
                r#"{"model": 4, "messages": [{"role": "user", "content": "hi"}]}"#,
            ),
            400,
            "invalid_type",
            json!("model"),
        ),
        (
            raw(Some("text/plain"), &ask("openai/a").to_string()),
            415,
            "unsupported_media_type",
            Value::Null,
        ),
        (
            raw(None, &ask("openai/a").to_string()),
            415,
            "unsupported_media_type",
            Value::Null,
        ),
    ];
    for (i, (request, status, code, param)) in cases.into_iter().enumerate() {
        let (got, _, error) = error_of(request.send().await.unwrap()).await;
        assert_eq!(got.as_u16(), status, "case {i}: {error}");
        assert_eq!(error["code"], code, "case {i}");
        assert_eq!(error["param"], param, "case {i}");
        http.still_serves().await;
    }
    let robot = raw(
        json,
        r#"{"model": "openai/a", "messages": [{"role": "robot", "content": "hi"}]}"#,
    );
    let (status, _, error) = error_of(robot.send().await.unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        error["message"].as_str().unwrap().contains("robot"),
        "{error}"
    );
    let charset = raw(
        Some("application/json; charset=utf-8"),
        &ask("openai/a").to_string(),
    );
    assert_eq!(charset.send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        mock.calls().len(),
        9,
        "only the good requests reached the stack"
    );
}

#[tokio::test]
async fn an_unknown_model_is_a_404_without_an_upstream_call() {
    let mock = MockProvider::new();
    let listed = Server::builder(mock.clone())
        .models(["openai/a"])
        .route("smart", ["openai/a"]);
    let http = start(listed.build().unwrap()).await;

    let (status, _, error) = error_of(http.chat(&ask("openai/zzz")).await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error["code"], "model_not_found");
    assert_eq!(error["param"], "model");
    assert!(error["message"].as_str().unwrap().contains("openai/zzz"));
    assert_eq!(mock.calls().len(), 0);
    assert_eq!(http.chat(&ask("smart")).await.status(), StatusCode::OK);

    let open = Server::builder(mock.clone())
        .models(["openai/a"])
        .allow_unlisted_models();
    let http = start(open.build().unwrap()).await;
    assert_eq!(http.chat(&ask("openai/zzz")).await.status(), StatusCode::OK);
    assert_eq!(mock.call_count("openai/zzz"), 1);
}

#[tokio::test]
async fn unknown_urls_and_methods_get_openai_shaped_errors() {
    let http = start(Server::builder(MockProvider::new()).build().unwrap()).await;
    let (status, _, error) = error_of(http.get("/v1/embeddings").await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error["code"], "unknown_url");
    let (status, _, _) = error_of(http.get("/v1/chat/completions").await).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    http.still_serves().await;
}

#[test]
fn invalid_options_are_rejected_at_build_naming_each_problem() {
    let error = Server::builder(MockProvider::new())
        .route("smart", ["gpt-4o", "openai/a"])
        .route("empty", Vec::<String>::new())
        .models(["open ai/a"])
        .api_key("sk secret")
        .body_limit(0)
        .build()
        .unwrap_err();
    let text = error.to_string();
    let paths: Vec<_> = error.problems().iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "routes.smart",
            "routes.empty",
            "models",
            "api_key",
            "body_limit"
        ],
        "{text}"
    );
    assert!(text.contains("\"gpt-4o\""), "{text}");
    assert!(
        !text.contains("sk secret"),
        "the key is never printed: {text}"
    );
}
