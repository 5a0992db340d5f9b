//! Anthropic stream events to OpenAI chunks: text and tool calls, the commit
//! point, faults before and after content.

use std::time::Duration;

use futures_util::StreamExt;
use llm_fallback::chat::{ChatChunk, MalformedChunks, StreamFault};
use llm_fallback::mock::ServerReply;
use llm_fallback::{ChatError, ChatRequest, ErrorKind};
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::{call_with, hello, CLAUDE};

fn stream_request() -> ChatRequest {
    hello().with_stream(true)
}

/// An SSE body of named Anthropic events.
fn sse(events: &[Value]) -> String {
    events
        .iter()
        .map(|e| format!("event: {}\ndata: {e}\n\n", e["type"].as_str().unwrap()))
        .collect()
}

fn start() -> Value {
    json!({"type": "message_start", "message": {"id": "msg_01", "type": "message", "role": "assistant",
        "model": CLAUDE, "content": [], "stop_reason": null, "stop_sequence": null,
        "usage": {"input_tokens": 25, "output_tokens": 1, "cache_read_input_tokens": 5}}})
}

fn text_delta(index: u64, text: &str) -> Value {
    json!({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": text}})
}

fn tool_start(index: u64, id: &str, name: &str) -> Value {
    json!({"type": "content_block_start", "index": index,
        "content_block": {"type": "tool_use", "id": id, "name": name, "input": {}}})
}

fn json_delta(index: u64, fragment: &str) -> Value {
    json!({"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": fragment}})
}

fn stop(index: u64) -> Value {
    json!({"type": "content_block_stop", "index": index})
}

fn end(stop_reason: &str, output_tokens: u64) -> [Value; 2] {
    [
        json!({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": null},
            "usage": {"output_tokens": output_tokens}}),
        json!({"type": "message_stop"}),
    ]
}

async fn chunks(body: String) -> Vec<Result<ChatChunk, ChatError>> {
    let reply = ServerReply::raw(200, "text/event-stream", body);
    let (_, result) = call_with(reply, stream_request()).await;
    result.unwrap().into_stream().unwrap().collect().await
}

/// Each chunk's first choice as `(delta, finish_reason)`, or its usage.
fn shapes(items: &[Result<ChatChunk, ChatError>]) -> Vec<Value> {
    items
        .iter()
        .map(|item| {
            let chunk = serde_json::to_value(item.as_ref().unwrap()).unwrap();
            assert_eq!(chunk["object"], "chat.completion.chunk");
            assert_eq!(chunk["id"], "msg_01");
            assert_eq!(chunk["model"], CLAUDE);
            match chunk["choices"].get(0) {
                Some(c) => json!([c["delta"], c["finish_reason"]]),
                None => json!({"usage": chunk["usage"]}),
            }
        })
        .collect()
}

#[tokio::test]
async fn a_text_and_tool_call_stream_becomes_openai_chunks() {
    let mut events = vec![
        start(),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        json!({"type": "ping"}),
        text_delta(0, "Let me "),
        text_delta(0, "check."),
        stop(0),
        tool_start(1, "toolu_1", "get_weather"),
        json_delta(1, ""),
        json_delta(1, "{\"city\":"),
        json_delta(1, " \"Paris\"}"),
        stop(1),
        tool_start(2, "toolu_2", "now"),
        stop(2),
    ];
    events.extend(end("tool_use", 42));
    let items = chunks(sse(&events)).await;
    let tool = |index: u32, id: &str, name: &str| {
        json!({"tool_calls": [{"index": index, "id": id, "type": "function",
            "function": {"name": name, "arguments": ""}}]})
    };
    let args =
        |fragment: &str| json!({"tool_calls": [{"index": 0, "function": {"arguments": fragment}}]});
    assert_eq!(
        shapes(&items),
        [
            json!([{"role": "assistant", "content": ""}, null]),
            json!([{"content": "Let me "}, null]),
            json!([{"content": "check."}, null]),
            json!([tool(0, "toolu_1", "get_weather"), null]),
            json!([args("{\"city\":"), null]),
            json!([args(" \"Paris\"}"), null]),
            json!([tool(1, "toolu_2", "now"), null]),
            json!([{}, "tool_calls"]),
            json!({"usage": {"prompt_tokens": 30, "completion_tokens": 42, "total_tokens": 72,
                "prompt_tokens_details": {"cached_tokens": 5}, "cache_read_input_tokens": 5}}),
        ]
    );
    let completion = llm_fallback::chat::ChatStream::from_items(items)
        .collect_completion()
        .await
        .unwrap();
    let message = &completion.choices[0].message;
    assert_eq!(message.text(), "Let me check.");
    let calls = message.tool_calls.as_ref().unwrap();
    assert_eq!(calls[0].function.arguments, "{\"city\": \"Paris\"}");
    assert_eq!(
        (calls[1].id.as_str(), calls[1].function.name.as_str()),
        ("toolu_2", "now")
    );
}

#[tokio::test]
async fn a_scripted_text_stream_delivers_the_whole_answer_with_usage() {
    let reply = ServerReply::text("once upon a time").in_chunks(4);
    let (server, result) = call_with(reply, stream_request()).await;
    assert_eq!(server.calls()[0].body["stream"], true);
    let completion = result
        .unwrap()
        .into_stream()
        .unwrap()
        .collect_completion()
        .await
        .unwrap();
    assert_eq!(completion.choices[0].message.text(), "once upon a time");
    assert_eq!(completion.choices[0].finish_reason.as_deref(), Some("stop"));
    let usage = completion.usage.unwrap();
    assert_eq!((usage.prompt_tokens, usage.completion_tokens), (5, 4));
}

// Real time (a socket, tokio-rs/tokio#4522), the token 300 ms after the head.
#[tokio::test]
async fn the_response_resolves_only_at_the_first_content_chunk() {
    let started = Instant::now();
    let reply = ServerReply::text("late answer").first_token_after(Duration::from_millis(300));
    let (_, result) = call_with(reply, stream_request()).await;
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    let items: Vec<_> = result.unwrap().into_stream().unwrap().collect().await;
    assert!(items.iter().all(Result::is_ok), "{items:?}");
    let text: String = items.iter().flatten().map(|c| c.text()).collect();
    assert_eq!(text, "late answer");
}

#[tokio::test]
async fn an_error_event_before_content_is_an_ordinary_error() {
    let reply = ServerReply::text("never").error_event_after(0, "overloaded_error", "Overloaded");
    let (_, result) = call_with(reply, stream_request()).await;
    let e = result.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Server, "fallback-able like a 529");
    assert_eq!(e.code(), Some("overloaded_error"));
    assert_eq!(e.message(), "Overloaded");
    assert_eq!(e.model(), Some(CLAUDE));
}

#[tokio::test]
async fn an_error_event_after_content_ends_the_stream_with_a_protocol_fault() {
    let reply = ServerReply::text("one two three four five").error_event_after(
        3,
        "overloaded_error",
        "Overloaded",
    );
    let (_, result) = call_with(reply, stream_request()).await;
    let items: Vec<_> = result.unwrap().into_stream().unwrap().collect().await;
    let text: String = items.iter().flatten().map(ChatChunk::text).collect();
    assert_eq!(text, "one two three ");
    let e = items.last().unwrap().as_ref().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::StreamInterrupted);
    assert_eq!(e.stream_fault(), Some((StreamFault::Protocol, 3)));
    assert_eq!(e.code(), Some("overloaded_error"));
}

#[tokio::test]
async fn a_cut_after_content_is_stream_interrupted_and_before_it_a_connect_error() {
    let (_, result) = call_with(ServerReply::text("a b c d").cut_after(2), stream_request()).await;
    let items: Vec<_> = result.unwrap().into_stream().unwrap().collect().await;
    let e = items.last().unwrap().as_ref().unwrap_err();
    assert_eq!(e.stream_fault(), Some((StreamFault::Cut, 2)));

    let (_, result) = call_with(ServerReply::text("a b").cut_after(0), stream_request()).await;
    assert_eq!(result.unwrap_err().kind(), ErrorKind::Connect);
}

#[tokio::test]
async fn a_malformed_event_after_content_is_a_counted_protocol_fault() {
    let (_, result) = call_with(
        ServerReply::text("a b c").malformed_after(1),
        stream_request(),
    )
    .await;
    let response = result.unwrap();
    let malformed = response
        .extensions()
        .get::<MalformedChunks>()
        .unwrap()
        .clone();
    let items: Vec<_> = response.into_stream().unwrap().collect().await;
    let text: String = items.iter().flatten().map(ChatChunk::text).collect();
    assert_eq!(text, "a ", "nothing after the broken event");
    let e = items.last().unwrap().as_ref().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::StreamInterrupted);
    assert_eq!(e.stream_fault(), Some((StreamFault::Protocol, 1)));
    assert_eq!(malformed.count(), 1);
}

#[tokio::test]
async fn a_stream_without_message_stop_is_finalized_with_usage() {
    let reply = ServerReply::text("done here").without_done();
    let (_, result) = call_with(reply, stream_request()).await;
    let completion = result
        .unwrap()
        .into_stream()
        .unwrap()
        .collect_completion()
        .await
        .unwrap();
    assert_eq!(completion.choices[0].message.text(), "done here");
    assert_eq!(completion.choices[0].finish_reason.as_deref(), Some("stop"));
    assert_eq!(completion.usage.unwrap().completion_tokens, 2);
}

#[tokio::test]
async fn a_stream_that_ends_without_content_is_an_ordinary_error() {
    let body = sse(&[start(), json!({"type": "ping"})]);
    let reply = ServerReply::raw(200, "text/event-stream", body);
    let (_, result) = call_with(reply, stream_request()).await;
    let e = result.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Server);
    assert!(e.message().contains("before any content"), "{e}");
}

#[tokio::test]
async fn an_error_status_on_a_stream_request_is_an_ordinary_error() {
    let (_, result) = call_with(ServerReply::status(529), stream_request()).await;
    let e = result.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Server);
    assert_eq!(e.code(), Some("overloaded_error"));
}
