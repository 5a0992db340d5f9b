//! Anthropic-shaped calls: messages, named stream events, error shapes.

use super::*;

fn anthropic_chat(model: &str, stream: bool) -> Value {
    json!({"model": model, "max_tokens": 100, "system": "Be brief.",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi there"}]}], "stream": stream})
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
