//! Core types: lossless JSON round trips, O(1) clones, error messages.

use std::sync::Arc;

use llm_fallback::chat::{ChatChunk, ChatCompletion, Content, ContentPart, Role};
use llm_fallback::{ChatError, ChatRequest, ErrorKind, Message};
use serde_json::{json, Value};

#[test]
fn unknown_request_fields_survive_a_round_trip() {
    let body = json!({
        "model": "openai/gpt-4o",
        "messages": [
            {"role": "system", "content": "be brief", "x-cache": {"ttl": 5}},
            {"role": "user", "content": [
                {"type": "text", "text": "what is this?", "cache_control": {"type": "ephemeral"}},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}},
                {"type": "input_audio", "input_audio": {"data": "UklG", "format": "wav"}}
            ]},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{\"q\":1}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "42"},
            {"role": "developer", "content": "answer in French", "name": "ops"}
        ],
        "stream": false,
        "temperature": 0.2,
        "tools": [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}],
        "response_format": {"type": "json_object"},
        "some_future_field": [1, 2, {"deep": true}]
    });
    let request: ChatRequest = serde_json::from_value(body.clone()).unwrap();
    assert_eq!(request.model(), "openai/gpt-4o");
    assert_eq!(request.messages().len(), 5);
    assert_eq!(request.messages()[4].role, Role::Developer);
    match &request.messages()[1].content {
        Some(Content::Parts(parts)) => {
            assert!(matches!(parts[0], ContentPart::Text(_)));
            assert!(matches!(parts[1], ContentPart::Image(_)));
            assert!(matches!(parts[2], ContentPart::Other(_)));
        }
        other => panic!("expected parts, got {other:?}"),
    }
    let mut back = serde_json::to_value(&request).unwrap();
    // `content: null` is written as an absent field; both mean the same to providers.
    back["messages"][2]
        .as_object_mut()
        .unwrap()
        .insert("content".into(), Value::Null);
    assert_eq!(back, body);
}

#[test]
fn unknown_response_fields_survive_a_round_trip() {
    let body = json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000,
        "model": "gpt-4o-2024-08-06",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi", "refusal": null},
                     "finish_reason": "stop", "logprobs": null}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10,
                  "prompt_tokens_details": {"cached_tokens": 0}},
        "system_fingerprint": "fp_1", "service_tier": "default"
    });
    let completion: ChatCompletion = serde_json::from_value(body.clone()).unwrap();
    assert_eq!(completion.usage.as_ref().unwrap().total_tokens, 10);
    assert_eq!(serde_json::to_value(&completion).unwrap(), body);

    let chunk = json!({
        "id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
        "choices": [{"index": 0, "delta": {"content": "x", "audio": {"id": "a"}}, "finish_reason": null, "logprobs": null}],
        "obfuscation": "abc"
    });
    let parsed: ChatChunk = serde_json::from_value(chunk.clone()).unwrap();
    assert!(parsed.has_content());
    assert_eq!(serde_json::to_value(&parsed).unwrap(), chunk);
}

#[test]
fn cloning_a_request_shares_the_prompt() {
    let big = "x".repeat(1 << 20);
    let request = ChatRequest::new("openai/gpt-4o", [Message::user(big)]);
    let clone = request.clone();
    let a = request.messages()[0].content.as_ref().unwrap() as *const Content;
    let b = clone.messages()[0].content.as_ref().unwrap() as *const Content;
    assert!(std::ptr::eq(a, b), "the clone copied the prompt");
}

#[test]
fn modifying_a_clone_leaves_the_original_alone() {
    let request = ChatRequest::new("openai/gpt-4o", [Message::user("hi")]);
    let mut clone = request.clone();
    clone.messages_mut().push(Message::assistant("there"));
    clone.set_prepended(Some(Arc::from(vec![Message::system("sys")])));
    assert_eq!(request.messages().len(), 1);
    assert!(request.prepended().is_empty());
    let sent: Vec<_> = clone.all_messages().map(|m| m.role).collect();
    assert_eq!(sent, [Role::System, Role::User, Role::Assistant]);
}

#[test]
fn prepended_messages_are_serialized_first() {
    let mut request = ChatRequest::new("openai/gpt-4o", [Message::user("hi")]);
    request.set_prepended(Some(Arc::from(vec![Message::system("be brief")])));
    let json = serde_json::to_value(&request).unwrap();
    assert_eq!(json["messages"][0]["role"], "system");
    assert_eq!(json["messages"][1]["content"], "hi");
}

#[test]
fn a_request_without_model_is_rejected_with_a_clear_message() {
    let e = serde_json::from_str::<ChatRequest>(r#"{"messages": []}"#).unwrap_err();
    assert!(e.to_string().contains("missing field `model`"), "{e}");
    let e = serde_json::from_str::<ChatRequest>(
        r#"{"model": "a/b", "messages": [{"role": "wizard", "content": "x"}]}"#,
    )
    .unwrap_err();
    assert!(e.to_string().contains("wizard"), "{e}");
}

#[test]
fn request_debug_output_hides_message_content() {
    let request = ChatRequest::new("openai/gpt-4o", [Message::user("my secret diary")]);
    let debug = format!("{request:?}");
    assert!(!debug.contains("secret"), "{debug}");
    assert!(debug.contains("openai/gpt-4o"));
}

#[test]
fn errors_name_model_status_and_kind() {
    let e = ChatError::new(ErrorKind::Auth, "Incorrect API key provided")
        .with_status(http::StatusCode::UNAUTHORIZED)
        .with_model("azure/gpt-4o-mini");
    assert_eq!(
        e.to_string(),
        "azure/gpt-4o-mini: 401 Unauthorized (auth): Incorrect API key provided"
    );
}

#[test]
fn kinds_follow_the_failure_class_table() {
    use ErrorKind::*;
    let retry: Vec<_> = ErrorKind::ALL
        .into_iter()
        .filter(|k| k.is_retryable())
        .collect();
    assert_eq!(retry, [RateLimited, Server, Connect]);
    for k in [
        ContextWindowExceeded,
        ContentFilter,
        BadRequest,
        Cancelled,
        Config,
    ] {
        assert!(!k.is_fallbackable(), "{k}");
        assert!(!k.counts_for_cooldown(), "{k}");
    }
    for k in [
        RateLimited,
        Server,
        Timeout,
        Connect,
        Auth,
        NotFound,
        CoolingDown,
    ] {
        assert!(k.is_fallbackable(), "{k}");
    }
    assert!(!CoolingDown.counts_for_cooldown());
}
