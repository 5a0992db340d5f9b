//! Anthropic `message` bodies to OpenAI `chat.completion`s.

use llm_fallback::mock::ServerReply;
use llm_fallback::ErrorKind;
use serde_json::{json, Value};

use crate::{call_with, hello, CLAUDE};

/// The completion the client makes of an Anthropic body, as JSON.
async fn translate(anthropic: Value) -> Value {
    let reply = ServerReply::raw(200, "application/json", anthropic.to_string());
    let (_, result) = call_with(reply, hello()).await;
    let response = result.unwrap();
    assert_eq!(response.model(), CLAUDE, "the model called");
    serde_json::to_value(response.into_completion().unwrap()).unwrap()
}

fn message(content: Value, stop_reason: &str) -> Value {
    json!({"id": "msg_01", "type": "message", "role": "assistant", "model": CLAUDE,
        "content": content, "stop_reason": stop_reason, "stop_sequence": null,
        "usage": {"input_tokens": 12, "output_tokens": 7}})
}

#[tokio::test]
async fn a_text_answer_is_an_openai_chat_completion() {
    let completion = translate(message(
        json!([{"type": "text", "text": "Hello"}, {"type": "text", "text": " world"}]),
        "end_turn",
    ))
    .await;
    let created = completion["created"].as_u64().unwrap();
    assert!(created > 1_700_000_000, "a unix timestamp: {created}");
    assert_eq!(
        completion,
        json!({"id": "msg_01", "object": "chat.completion", "created": created, "model": CLAUDE,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello world"},
                "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19}})
    );
}

#[tokio::test]
async fn tool_use_blocks_become_tool_calls_with_json_arguments() {
    let completion = translate(message(
        json!([
            {"type": "thinking", "thinking": "The user wants weather.", "signature": "x"},
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris", "days": 2}},
            {"type": "tool_use", "id": "toolu_2", "name": "now", "input": {}},
        ]),
        "tool_use",
    ))
    .await;
    assert_eq!(
        completion["choices"][0],
        json!({"index": 0, "finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": "Let me check.", "tool_calls": [
            {"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\",\"days\":2}"}},
            {"id": "toolu_2", "type": "function", "function": {"name": "now", "arguments": "{}"}},
        ]}})
    );
}

#[tokio::test]
async fn a_turn_with_only_tool_calls_has_null_content() {
    let completion = translate(message(
        json!([{"type": "tool_use", "id": "toolu_1", "name": "now", "input": {}}]),
        "tool_use",
    ))
    .await;
    let message = &completion["choices"][0]["message"];
    assert_eq!(message.get("content"), None, "null content is omitted");
    assert_eq!(message["tool_calls"][0]["id"], "toolu_1");
}

#[tokio::test]
async fn stop_reasons_become_finish_reasons() {
    let table = [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
    ];
    for (stop, finish) in table {
        let completion = translate(message(json!([{"type": "text", "text": "x"}]), stop)).await;
        assert_eq!(completion["choices"][0]["finish_reason"], finish, "{stop}");
    }
}

#[tokio::test]
async fn cache_tokens_count_in_the_prompt_and_are_detailed() {
    let mut body = message(json!([{"type": "text", "text": "x"}]), "end_turn");
    body["usage"] = json!({"input_tokens": 10, "output_tokens": 5,
        "cache_read_input_tokens": 100, "cache_creation_input_tokens": 20});
    let completion = translate(body).await;
    assert_eq!(
        completion["usage"],
        json!({"prompt_tokens": 130, "completion_tokens": 5, "total_tokens": 135,
            "prompt_tokens_details": {"cached_tokens": 100},
            "cache_read_input_tokens": 100, "cache_creation_input_tokens": 20})
    );
}

#[tokio::test]
async fn the_scripted_mock_answer_comes_back_with_usage() {
    let (server, result) = call_with(ServerReply::text("hello world"), hello()).await;
    let response = result.unwrap();
    assert_eq!(response.text().as_deref(), Some("hello world"));
    let usage = response.usage().unwrap();
    assert_eq!(
        (
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.total_tokens
        ),
        (5, 2, 7)
    );
    assert!(!server.calls()[0].stream);
    assert_eq!(server.calls()[0].body.get("stream"), None);
}

#[tokio::test]
async fn a_length_finish_from_the_mock_is_max_tokens_upstream() {
    let reply = ServerReply::text("cut short").finish_reason("length");
    let (_, result) = call_with(reply, hello()).await;
    let completion = result.unwrap().into_completion().unwrap();
    assert_eq!(
        completion.choices[0].finish_reason.as_deref(),
        Some("length")
    );
}

#[tokio::test]
async fn a_success_body_that_is_not_a_message_is_a_server_error() {
    for body in [
        json!({"choices": []}),
        json!({"type": "completion", "content": []}),
    ] {
        let reply = ServerReply::raw(200, "application/json", body.to_string());
        let (_, result) = call_with(reply, hello()).await;
        let e = result.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Server, "{body}");
        assert!(e.message().contains("not an Anthropic message"), "{e}");
    }
    let body = json!({"type": "message", "content": [{"type": "tool_use", "input": {}}]});
    let reply = ServerReply::raw(200, "application/json", body.to_string());
    let e = call_with(reply, hello()).await.1.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Server);
    assert!(e.message().contains("tool_use block without an id"), "{e}");
}

#[tokio::test]
async fn an_error_in_a_success_body_is_classified() {
    let body =
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}});
    let reply = ServerReply::raw(200, "application/json", body.to_string());
    let e = call_with(reply, hello()).await.1.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Server);
    assert_eq!(e.code(), Some("overloaded_error"));
    assert_eq!(e.message(), "Overloaded");
}
