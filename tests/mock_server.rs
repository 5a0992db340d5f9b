//! The mock provider server on its own, driven by a plain HTTP client: what
//! users of it for their own tests rely on.

#[path = "waiting/mod.rs"]
mod waiting;

use std::time::Duration;

use llm_fallback::mock::{MockServer, ServerReply};
use serde_json::{json, Value};
use tokio::time::Instant;

async fn post(url: &str, body: Value) -> (u16, String, String) {
    let response = reqwest::Client::new()
        .post(url)
        .header("authorization", "Bearer sk-very-secret")
        .header("api-key", "azure-very-secret")
        .header("x-request-tag", "visible-tag")
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, content_type, response.text().await.unwrap())
}

fn chat(model: &str, stream: bool) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hi there"}], "stream": stream})
}

fn completions(server: &MockServer) -> String {
    format!("{}/chat/completions", server.base_url())
}

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

fn messages(server: &MockServer) -> String {
    format!("{}/v1/messages", server.anthropic_base_url())
}

fn anthropic_chat(model: &str, stream: bool) -> Value {
    json!({"model": model, "max_tokens": 100, "system": "Be brief.",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi there"}]}], "stream": stream})
}

#[tokio::test]
async fn stream_faults_are_on_the_wire_as_scripted() {
    let server = MockServer::start().await;
    let url = completions(&server);
    let data = |body: &str| -> Vec<String> {
        body.split("\n\n")
            .filter_map(|e| e.strip_prefix("data: "))
            .map(str::to_owned)
            .collect()
    };

    server.always(
        "m",
        ServerReply::text("one two three").broken_chunk_after(1),
    );
    let (_, _, body) = post(&url, chat("m", true)).await;
    let events = data(&body);
    let broken = &events[2];
    assert!(broken.starts_with('{'), "{broken}");
    assert!(
        serde_json::from_str::<Value>(broken).is_err(),
        "cut mid-JSON: {broken}"
    );
    let contents: Vec<String> = events
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(e).ok())
        .filter_map(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(
        contents,
        ["", "one ", "three"],
        "the piece never arrives whole"
    );
    assert!(body.ends_with("data: [DONE]\n\n"));

    server.always("m", ServerReply::text("one").huge_index_after(0));
    let (_, _, body) = post(&url, chat("m", true)).await;
    let chunk: Value = serde_json::from_str(&data(&body)[1]).unwrap();
    assert_eq!(chunk["choices"][0]["index"], 4294967295u64);

    server.always(
        "m",
        ServerReply::text("one")
            .after_done("more")
            .without_finish_reason(),
    );
    let (_, _, body) = post(&url, chat("m", true)).await;
    let events = data(&body);
    assert!(!body.contains("finish_reason\":\"stop"), "{body}");
    assert_eq!(events.iter().filter(|e| *e == "[DONE]").count(), 2);
    assert!(events[events.len() - 2].contains("more"));

    let mut garbled = chat("m", true);
    garbled["stream_options"] = json!({"include_usage": true});
    server.always("m", ServerReply::text("one").garbled_usage());
    let (_, _, body) = post(&url, garbled).await;
    assert!(body.contains("\"prompt_tokens\":\"many\""), "{body}");
}

#[tokio::test]
async fn an_endless_line_is_sent_and_then_the_body_stays_open() {
    let server = MockServer::start().await;
    server.always("m", ServerReply::text("one").endless_line_after(0, 1 << 20));
    let mut response = reqwest::Client::new()
        .post(completions(&server))
        .json(&chat("m", true))
        .send()
        .await
        .unwrap();
    let mut body = Vec::new();
    let mut xs = 0;
    while xs < (1 << 20) {
        let bytes = response.chunk().await.unwrap().expect("still open");
        xs += bytes.iter().filter(|b| **b == b'x').count();
        body.extend_from_slice(&bytes);
    }
    let line = body.rsplit(|b| *b == b'\n').next().unwrap();
    assert_eq!(line.len(), "data: ".len() + (1 << 20), "one line, no end");
    assert!(line.starts_with(b"data: xxx"));
    let next = futures_util::FutureExt::now_or_never(response.chunk());
    assert!(next.is_none(), "silent, not ended");
}

#[tokio::test]
async fn anthropic_calls_get_messages_and_named_events() {
    let server = MockServer::start().await;
    server.always("claude", ServerReply::text("abcdef").in_chunks(3));
    let (status, _, body) = post(&messages(&server), anthropic_chat("claude", false)).await;
    assert_eq!(status, 200);
    let message: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(message["type"], "message");
    assert_eq!(
        message["content"],
        json!([{"type": "text", "text": "abcdef"}])
    );
    assert_eq!(message["stop_reason"], "end_turn");
    // "Be brief." and "hi there": four words in.
    assert_eq!(
        message["usage"],
        json!({"input_tokens": 4, "output_tokens": 1})
    );
    let call = &server.calls()[0];
    assert_eq!(
        (call.model.as_str(), call.path.as_str()),
        ("claude", "/v1/messages")
    );
    assert_eq!(call.texts(), ["Be brief.", "hi there"]);

    let (status, content_type, sse) =
        post(&messages(&server), anthropic_chat("claude", true)).await;
    assert_eq!((status, content_type.as_str()), (200, "text/event-stream"));
    let names: Vec<&str> = sse
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("event: ")?.split('\n').next())
        .collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
    );
}

#[tokio::test]
async fn anthropic_errors_have_anthropic_shapes() {
    let server = MockServer::start().await;
    server.script(
        "claude",
        [
            ServerReply::status(529),
            ServerReply::error(400, "invalid_request_error", "prompt is too long"),
            ServerReply::text("a b").error_event_after(1, "overloaded_error", "Overloaded"),
        ],
    );
    let (status, _, body) = post(&messages(&server), anthropic_chat("claude", false)).await;
    assert_eq!(status, 529);
    let error: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        error,
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "mock 529 <unknown status code>"}})
    );
    let (status, _, body) = post(&messages(&server), anthropic_chat("claude", false)).await;
    assert_eq!(status, 400);
    assert!(body.contains(r#""type":"invalid_request_error""#), "{body}");

    let (_, _, sse) = post(&messages(&server), anthropic_chat("claude", true)).await;
    assert!(
        sse.ends_with("event: error\ndata: {\"error\":{\"message\":\"Overloaded\",\"type\":\"overloaded_error\"},\"type\":\"error\"}\n\n"),
        "{sse}"
    );
    assert!(!sse.contains("message_stop"), "{sse}");

    let (status, _, body) = post(&messages(&server), json!({"messages": []})).await;
    assert_eq!(status, 400);
    assert!(body.contains("model: Field required"), "{body}");
    assert_eq!(server.calls().len(), 3, "an invalid body is not a call");
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

// Paused time with a socket is safe here only because the mock's delay is
// the one timer, armed once the request has arrived (tokio-rs/tokio#4522).
#[tokio::test(start_paused = true)]
async fn delays_run_on_tokio_time() {
    let server = MockServer::start().await;
    server.always(
        "m",
        ServerReply::text("late").after(Duration::from_secs(10)),
    );
    let started = Instant::now();
    let (status, _, _) = post(&completions(&server), chat("m", false)).await;
    assert_eq!(status, 200);
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_secs(10) && elapsed < Duration::from_secs(11),
        "{elapsed:?}"
    );
    assert!(
        server.calls()[0].at - started < Duration::from_secs(1),
        "recorded on arrival"
    );
}

#[tokio::test]
async fn the_server_stops_when_its_last_handle_is_dropped() {
    let server = MockServer::start().await;
    let url = completions(&server);
    let clone = server.clone();
    drop(server);
    assert_eq!(
        post(&url, chat("m", false)).await.0,
        200,
        "a clone keeps it running"
    );
    drop(clone);
    let addr = url.trim_start_matches("http://").split('/').next().unwrap();
    waiting::poll_until("the port is closed", async || {
        tokio::net::TcpStream::connect(addr).await.is_err()
    })
    .await;
    let refused = reqwest::Client::new()
        .post(&url)
        .body(chat("m", false).to_string())
        .send()
        .await;
    assert!(refused.is_err());
}

#[tokio::test]
async fn a_hang_accepts_the_call_and_never_answers() {
    let server = MockServer::start().await;
    server.script("m", [ServerReply::hang()]);
    let url = completions(&server);
    let silent = tokio::spawn(async move { post(&url, chat("m", false)).await });
    waiting::poll_until("the call arrived", async || server.call_count("m") == 1).await;
    let (status, _, _) = post(&completions(&server), chat("m", false)).await;
    assert_eq!(status, 200, "the next call is answered");
    assert!(!silent.is_finished(), "the hung call is still unanswered");
    silent.abort();
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
