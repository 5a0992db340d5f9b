//! OpenAI-compatible replies: scripts then always then default, the
//! stream wire format, Azure paths, per-key replies, non-chat requests,
//! and a call's Debug without credentials.

use super::*;

#[tokio::test]
async fn scripts_are_used_once_then_the_always_reply_then_the_default() {
    let server = MockServer::start().await;
    server.script("a", [ServerReply::status(500), ServerReply::text("second")]);
    server.always("a", ServerReply::text("always"));
    let mut seen = Vec::new();
    for _ in 0..4 {
        let (status, _, body) = post(&completions(&server), chat("a", false)).await;
        let text: Value = serde_json::from_str(&body).unwrap();
        seen.push((status, text["choices"][0]["message"]["content"].clone()));
    }
    assert_eq!(seen[0].0, 500);
    assert_eq!(
        seen[1..].iter().map(|s| s.1.clone()).collect::<Vec<_>>(),
        [json!("second"), json!("always"), json!("always")]
    );
    let (_, _, body) = post(&completions(&server), chat("b", false)).await;
    assert!(body.contains("ok from b"));
    assert_eq!(server.called_models(), ["a", "a", "a", "a", "b"]);
}

#[tokio::test]
async fn streams_follow_the_openai_wire_format() {
    let server = MockServer::start().await;
    server.always("m", ServerReply::text("abcdef").in_chunks(3));
    let mut body = chat("m", true);
    body["stream_options"] = json!({"include_usage": true});
    let (status, content_type, sse) = post(&completions(&server), body).await;
    assert_eq!((status, content_type.as_str()), (200, "text/event-stream"));

    let events: Vec<&str> = sse.split("\n\n").filter(|e| !e.is_empty()).collect();
    assert_eq!(
        events.len(),
        1 + 3 + 1 + 1 + 1,
        "preamble, 3 chunks, finish, usage, done: {sse}"
    );
    assert_eq!(*events.last().unwrap(), "data: [DONE]");
    let json = |e: &str| serde_json::from_str::<Value>(e.strip_prefix("data: ").unwrap()).unwrap();
    assert_eq!(json(events[0])["choices"][0]["delta"]["role"], "assistant");
    let text: String = events[1..4]
        .iter()
        .map(|e| {
            json(e)["choices"][0]["delta"]["content"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(text, "abcdef");
    assert_eq!(json(events[4])["choices"][0]["finish_reason"], "stop");
    assert_eq!(json(events[5])["usage"]["completion_tokens"], 1);

    // Without include_usage there is no usage chunk.
    let (_, _, sse) = post(&completions(&server), chat("m", true)).await;
    assert!(!sse.contains("usage"), "{sse}");
}

#[tokio::test]
async fn requests_that_are_not_chat_calls_get_openai_shaped_errors() {
    let server = MockServer::start().await;
    let (status, _, body) = post(
        &format!("{}/embeddings", server.base_url()),
        chat("m", false),
    )
    .await;
    assert_eq!(status, 404);
    assert!(body.contains("no route"), "{body}");
    let (status, _, body) = post(&completions(&server), json!({"messages": "nope"})).await;
    assert_eq!(status, 400);
    let error: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["error"]["type"], "invalid_request_error");
    assert!(server.calls().is_empty(), "not recorded as calls");
}

#[tokio::test]
async fn azure_paths_take_the_deployment_as_the_model() {
    let server = MockServer::start().await;
    let url = format!(
        "{}/openai/deployments/my%20deployment/chat/completions?api-version=v1",
        server.endpoint()
    );
    let (status, _, _) = post(&url, chat("ignored", false)).await;
    assert_eq!(status, 200);
    let call = &server.calls()[0];
    assert_eq!(call.model, "my deployment");
    assert_eq!(call.query("api-version"), Some("v1"));
    assert_eq!(call.body["model"], "ignored");
}

#[tokio::test]
async fn a_call_debug_never_prints_credentials() {
    let server = MockServer::start().await;
    post(&completions(&server), chat("m", false)).await;
    let call = &server.calls()[0];
    assert_eq!(call.header("authorization"), Some("Bearer sk-very-secret"));
    let debug = format!("{call:?}");
    assert!(debug.contains("visible-tag"), "{debug}");
    assert!(!debug.contains("very-secret"), "{debug}");
}

#[tokio::test]
async fn replies_can_depend_on_the_key_presented() {
    let server = MockServer::start().await;
    server.script_for_key("m", "sk-a", [ServerReply::status(429)]);
    server.always_for_key("m", "azure-b", ServerReply::status(401));
    server.always_for_key("m", "ant-c", ServerReply::status(403));
    let call = |header: &'static str, value: &'static str| {
        let url = completions(&server);
        async move {
            let response = reqwest::Client::new()
                .post(url)
                .header(header, value)
                .header("content-type", "application/json")
                .body(chat("m", false).to_string())
                .send()
                .await
                .unwrap();
            response.status().as_u16()
        }
    };

    assert_eq!(call("authorization", "Bearer sk-a").await, 429);
    assert_eq!(
        call("authorization", "Bearer sk-a").await,
        200,
        "the key's queue is used up"
    );
    assert_eq!(call("api-key", "azure-b").await, 401);
    assert_eq!(call("x-api-key", "ant-c").await, 403);
    assert_eq!(call("authorization", "Bearer other").await, 200);

    let keys: Vec<_> = server
        .calls()
        .iter()
        .map(|c| c.api_key().unwrap().to_owned())
        .collect();
    assert_eq!(keys, ["sk-a", "sk-a", "azure-b", "ant-c", "other"]);
    assert_eq!(server.key_count("sk-a"), 2);
}
