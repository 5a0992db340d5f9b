//! The fast path: an OpenAI-compatible upstream receives the client's own
//! bytes (only `model`, the prepended messages and, for a stream,
//! `stream_options` written in), and the client receives the provider's
//! chunks as sent (only `model` replaced). Integrity rules still hold.

use super::*;

/// A gateway with one OpenAI-compatible provider on `upstream`, a
/// prepended system message, and usage asked for on streams.
async fn gateway(upstream: &MockServer) -> Gateway {
    let toml = format!(
        r#"
        [model_messages]
        default = [{{ role = "system", content = "Be brief." }}]
        [providers.up]
        kind = "openai"
        base_url = "{}"
        api_key_env = "UP_KEY"
        [routes]
        chat = ["up/gpt-4o-mini"]
        [retry]
        max_retries = 0
        [server]
        api_key_env = "GW_KEY"
        "#,
        upstream.base_url()
    );
    let config = Config::from_toml_str(&toml).unwrap();
    Gateway::start(config, &[("UP_KEY", "k"), ("GW_KEY", KEY)]).await
}

/// A body no typed encoder would write back byte for byte: odd spacing,
/// key order, escapes, numbers in exotic forms, unknown nested fields.
const CLIENT_BODY: &str = concat!(
    "{ \"temperature\" : 1e0, \"model\":\"chat\" ,\n",
    "  \"messages\": [ {\"role\":\"user\",\"content\":\"h\\u00e9llo \\\"you\\\"\", \"x-extra\": [1, 2.50]},\n",
    "                {\"role\":\"assistant\",\"content\":null,\"refusal\":\"no\"} ],\n",
    "  \"max_tokens\": 256, \"zeta\": {\"b\": 1, \"a\": [true, null]}, \"top_p\": 0.10 }"
);

const PREPENDED: &str = r#"{"role":"system","content":"Be brief."}"#;

/// What the upstream should receive for a client's `body` (one of
/// [`CLIENT_BODY`]'s): the same bytes with the provider's model id and the
/// prepended message written in.
fn upstreams(body: &str) -> String {
    body.replace("\"model\":\"chat\"", "\"model\":\"gpt-4o-mini\"")
        .replace(
            "\"messages\": [ {",
            &format!("\"messages\": [{PREPENDED}, {{"),
        )
}

async fn post(gw: &Gateway, body: String) -> Response {
    gw.http
        .post(format!("{}/v1/chat/completions", gw.base))
        .bearer_auth(KEY)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_openai_upstream_receives_the_clients_bytes_with_only_model_and_prepended_changed() {
    let body = CLIENT_BODY.to_owned();
    let upstream = MockServer::start().await;
    upstream.always("gpt-4o-mini", ServerReply::text("ok"));
    let gw = gateway(&upstream).await;

    let r = post(&gw, body.clone()).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());

    let sent = &upstream.calls()[0].raw_body;
    assert_eq!(std::str::from_utf8(sent).unwrap(), upstreams(&body));
}

#[tokio::test]
async fn a_stream_request_gets_stream_options_written_in_and_nothing_else() {
    let body = CLIENT_BODY.replace("\"top_p\": 0.10", "\"top_p\": 0.10, \"stream\" :true");
    let upstream = MockServer::start().await;
    upstream.always("gpt-4o-mini", ServerReply::text("ok"));
    let gw = gateway(&upstream).await;

    let r = post(&gw, body.clone()).await;
    assert_eq!(r.status(), StatusCode::OK);
    r.text().await.unwrap();

    let expected = upstreams(&format!(
        "{{\"stream_options\":{{\"include_usage\":true}},{}",
        &body[1..]
    ));
    let sent = &upstream.calls()[0].raw_body;
    assert_eq!(std::str::from_utf8(sent).unwrap(), expected);
}

#[tokio::test]
async fn a_clients_own_stream_options_are_merged_by_the_typed_encoding() {
    let upstream = MockServer::start().await;
    upstream.always("gpt-4o-mini", ServerReply::text("ok"));
    let gw = gateway(&upstream).await;
    let body = r#"{"model":"chat","stream":true,"stream_options":{"x":1},"messages":[{"role":"user","content":"hi"}]}"#;

    let r = post(&gw, body.to_owned()).await;
    assert_eq!(r.status(), StatusCode::OK);
    r.text().await.unwrap();

    let sent = &upstream.calls()[0].body;
    assert_eq!(
        sent["stream_options"],
        json!({"x": 1, "include_usage": true})
    );
    assert_eq!(sent["messages"][0]["content"], "Be brief.");
}

/// Chunks as a provider might write them: keys in its own order, spacing,
/// escapes and fields this crate does not know.
const CHUNKS: [&str; 4] = [
    r#"{"object":"chat.completion.chunk","model":"gpt-4o-mini-2024","id":"c1","created":7,"choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"system_fingerprint":"fp_1"}"#,
    r#"{ "id":"c1", "object":"chat.completion.chunk", "created":7, "model" : "gpt-4o-mini-2024", "choices":[{"index":0,"delta":{"content":"h\u00e9 \"q\""},"finish_reason":null}], "obfuscation":"xyz" }"#,
    r#"{"id":"c1","object":"chat.completion.chunk","created":7,"model":"gpt-4o-mini-2024","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#,
    r#"{"id":"c1","object":"chat.completion.chunk","created":7,"model":"gpt-4o-mini-2024","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5,"prompt_tokens_details":{"cached_tokens":0}}}"#,
];

fn sse(events: &[&str]) -> String {
    events.iter().map(|e| format!("data: {e}\n\n")).collect()
}

async fn stream_through(events: &[&str], include_usage: bool) -> (StatusCode, String) {
    let upstream = MockServer::start().await;
    upstream.always(
        "gpt-4o-mini",
        ServerReply::raw(200, "text/event-stream", sse(events)),
    );
    let gw = gateway(&upstream).await;
    let body = json!({"model": "chat", "stream": true,
        "stream_options": {"include_usage": include_usage},
        "messages": [{"role": "user", "content": "hi"}]});
    let r = post(&gw, body.to_string()).await;
    let status = r.status();
    (status, r.text().await.unwrap())
}

fn served(chunk: &str) -> String {
    chunk.replace("\"gpt-4o-mini-2024\"", "\"up/gpt-4o-mini\"")
}

/// The stream the client should receive for `chunks`: each as written,
/// with the served model, then `[DONE]`.
fn forwarded(chunks: &[&str]) -> String {
    let mut events: Vec<String> = chunks.iter().map(|c| served(c)).collect();
    events.push("[DONE]".to_owned());
    sse(&events.iter().map(String::as_str).collect::<Vec<_>>())
}

#[tokio::test]
async fn a_stream_reaches_the_client_as_the_provider_wrote_it_with_the_served_model() {
    let mut events = CHUNKS.to_vec();
    events.push("[DONE]");
    let (status, text) = stream_through(&events, true).await;

    assert_eq!(status, StatusCode::OK);
    assert_eq!(text, forwarded(&CHUNKS));
}

#[tokio::test]
async fn usage_the_client_did_not_ask_for_is_left_out_of_the_forwarded_stream() {
    let mut events = CHUNKS.to_vec();
    events.push("[DONE]");
    let (status, text) = stream_through(&events, false).await;

    assert_eq!(status, StatusCode::OK);
    assert_eq!(text, forwarded(&CHUNKS[..3]));
}

#[tokio::test]
async fn a_malformed_chunk_after_content_is_still_a_fault_on_the_fast_path() {
    let broken = r#"{"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"lost"#;
    let (status, text) =
        stream_through(&[CHUNKS[0], CHUNKS[1], broken, CHUNKS[2], "[DONE]"], true).await;

    assert_eq!(
        status,
        StatusCode::OK,
        "the headers went out with the first chunk"
    );
    assert!(
        text.starts_with(&sse(&[&served(CHUNKS[0]), &served(CHUNKS[1])])),
        "{text}"
    );
    assert!(
        !text.contains("[DONE]"),
        "an incomplete answer never ends as complete: {text}"
    );
    assert!(!text.contains("lost"), "{text}");
    let last = text.trim_end().rsplit("\n\n").next().unwrap();
    let error: Value = serde_json::from_str(last.strip_prefix("data: ").unwrap()).unwrap();
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cannot be read"),
        "{error}"
    );
}

#[tokio::test]
async fn a_chunk_that_is_no_chunk_is_a_fault_not_forwarded() {
    // Valid JSON, but `choices` is not a list: forwarding it would hand the
    // client something it cannot read.
    let odd = r#"{"id":"c1","object":"chat.completion.chunk","model":"m","choices":"everything"}"#;
    let (_, text) = stream_through(&[CHUNKS[0], CHUNKS[1], odd, CHUNKS[2], "[DONE]"], true).await;

    assert!(!text.contains("everything"), "{text}");
    assert!(!text.contains("[DONE]"), "{text}");
    assert!(text.contains("\"error\""), "{text}");
}

#[tokio::test]
async fn a_chunk_without_model_or_object_is_written_by_the_typed_encoding() {
    let bare = r#"{"choices":[{"index":0,"delta":{"content":"hi"}}]}"#;
    let (_, text) = stream_through(&[bare, CHUNKS[2], "[DONE]"], true).await;

    let first: Value = serde_json::from_str(
        text.split("\n\n")
            .next()
            .unwrap()
            .strip_prefix("data: ")
            .unwrap(),
    )
    .unwrap();
    assert_eq!(first["model"], "up/gpt-4o-mini");
    assert_eq!(first["object"], "chat.completion.chunk");
    assert_eq!(first["choices"][0]["delta"]["content"], "hi");
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
}

/// A completion no typed encoder would write back byte for byte: spacing,
/// key order, escapes, `logprobs: null`, unknown fields at every level.
const COMPLETION: &str = concat!(
    "{ \"object\" : \"chat.completion\", \"id\":\"c9\", \"model\":\"gpt-4o-mini-2024\",\n",
    "  \"created\": 7, \"choices\": [ {\"index\":0, \"logprobs\": null, \"message\": ",
    "{\"role\":\"assistant\",\"content\":\"h\\u00e9 \\\"q\\\"\",\"refusal\":null,\"annotations\":[]},",
    " \"finish_reason\":\"stop\"} ],\n",
    "  \"usage\": {\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":5,",
    "\"prompt_tokens_details\":{\"cached_tokens\":0}}, \"system_fingerprint\": \"fp_1\", \"service_tier\":\"default\" }"
);

async fn complete_through(body: &str) -> (StatusCode, String) {
    let upstream = MockServer::start().await;
    upstream.always(
        "gpt-4o-mini",
        ServerReply::raw(200, "application/json", body),
    );
    let gw = gateway(&upstream).await;
    let request = json!({"model": "chat", "messages": [{"role": "user", "content": "hi"}]});
    let r = post(&gw, request.to_string()).await;
    let status = r.status();
    (status, r.text().await.unwrap())
}

#[tokio::test]
async fn a_completion_reaches_the_client_as_the_provider_wrote_it_with_the_served_model() {
    let (status, text) = complete_through(COMPLETION).await;

    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(text, served(COMPLETION));
}

#[tokio::test]
async fn a_completion_naming_a_key_twice_is_written_by_the_typed_encoding() {
    // serde_json's tree keeps the last of a repeated key; so does the
    // gateway, which then writes the completion itself.
    let twice = COMPLETION.replace("\"id\":\"c9\"", "\"id\":\"c0\", \"id\":\"c9\"");
    let (status, text) = complete_through(&twice).await;

    assert_eq!(status, StatusCode::OK, "{text}");
    let value: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value["id"], "c9");
    assert_eq!(value["model"], "up/gpt-4o-mini");
    assert_eq!(value["choices"][0]["message"]["content"], "hé \"q\"");
    assert_eq!(value["system_fingerprint"], "fp_1");
    assert_eq!(text.matches("\"id\"").count(), 1, "{text}");
}

#[tokio::test]
async fn a_completion_without_object_is_written_by_the_typed_encoding() {
    let bare = COMPLETION.replace("\"object\" : \"chat.completion\", ", "");
    let (status, text) = complete_through(&bare).await;

    assert_eq!(status, StatusCode::OK, "{text}");
    let value: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value["object"], "chat.completion");
    assert_eq!(value["model"], "up/gpt-4o-mini");
    assert_eq!(value["service_tier"], "default");
}

#[tokio::test]
async fn a_2xx_error_body_or_an_empty_answer_is_still_a_failure_on_the_fast_path() {
    for body in [
        // An error object beside a plausible completion is an error.
        COMPLETION.replace(
            "\"id\":\"c9\"",
            "\"error\":{\"message\":\"overloaded\"}, \"id\":\"c9\"",
        ),
        // A choice that says nothing is no answer.
        COMPLETION
            .replace("\"content\":\"h\\u00e9 \\\"q\\\"\"", "\"content\":null")
            .replace("\"finish_reason\":\"stop\"", "\"finish_reason\":null"),
        COMPLETION.replace("\"choices\": [ {", "\"choices\": [], \"x\": [ {"),
    ] {
        let (status, text) = complete_through(&body).await;
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}\n{text}");
        let answer: Value = serde_json::from_str(&text).unwrap();
        assert!(answer["error"]["message"].is_string(), "{text}");
        assert!(answer.get("choices").is_none(), "{text}");
    }
}
