//! Anthropic streams that break: every fault is an error, never a shorter
//! answer that looks complete; events that carry nothing are skipped.

use std::time::Duration;

use futures_util::StreamExt;
use llm_fallback::chat::{ChatChunk, MalformedChunks, StreamFault};
use llm_fallback::mock::{MockServer, ServerReply};
use llm_fallback::server::Server;
use llm_fallback::{BoxChatService, ChatError, ErrorKind};
use serde_json::{json, Value};

use crate::{call_with, client, hello, CLAUDE};

async fn items(reply: ServerReply) -> Vec<Result<ChatChunk, ChatError>> {
    let (_, result) = call_with(reply, hello().with_stream(true)).await;
    result.unwrap().into_stream().unwrap().collect().await
}

fn text(items: &[Result<ChatChunk, ChatError>]) -> String {
    items.iter().flatten().map(ChatChunk::text).collect()
}

fn fault(items: &[Result<ChatChunk, ChatError>]) -> Option<(StreamFault, usize)> {
    items.last()?.as_ref().err()?.stream_fault()
}

#[tokio::test]
async fn a_text_delta_cut_in_half_is_a_protocol_fault_counted() {
    let (_, result) = call_with(
        ServerReply::text("one two three four").broken_chunk_after(2),
        hello().with_stream(true),
    )
    .await;
    let response = result.unwrap();
    let counter = response.extensions().get::<MalformedChunks>().cloned();
    let items: Vec<_> = response.into_stream().unwrap().collect().await;
    assert_eq!(text(&items), "one two ");
    assert_eq!(fault(&items), Some((StreamFault::Protocol, 2)));
    assert_eq!(counter.unwrap().count(), 1);

    let (_, result) = call_with(
        ServerReply::text("one two").broken_chunk_after(0),
        hello().with_stream(true),
    )
    .await;
    assert_eq!(result.unwrap_err().kind(), ErrorKind::Server);
}

#[tokio::test]
async fn no_message_stop_and_no_stop_reason_is_a_cut() {
    let items = items(
        ServerReply::text("a b c")
            .without_finish_reason()
            .without_done(),
    )
    .await;
    assert_eq!(text(&items), "a b c");
    assert_eq!(fault(&items), Some((StreamFault::Cut, 3)));
}

#[tokio::test]
async fn message_stop_without_a_stop_reason_ends_the_answer_as_sent() {
    let items = items(ServerReply::text("a b c").without_finish_reason()).await;
    assert!(items.iter().all(Result::is_ok), "{items:?}");
    assert_eq!(text(&items), "a b c");
}

#[tokio::test]
async fn garbled_usage_in_message_delta_is_a_fault() {
    let items = items(ServerReply::text("a b c").garbled_usage()).await;
    assert_eq!(text(&items), "a b c");
    assert_eq!(fault(&items), Some((StreamFault::Protocol, 3)));
}

#[tokio::test]
async fn content_after_message_stop_never_reaches_the_caller() {
    let items = items(ServerReply::text("a b").after_done("EXTRA")).await;
    assert!(items.iter().all(Result::is_ok), "{items:?}");
    assert_eq!(text(&items), "a b");
}

#[tokio::test]
async fn an_unnamed_event_without_a_type_is_a_fault_but_a_garbled_ping_is_skipped() {
    let start =
        r#"{"type":"message_start","message":{"id":"m","model":"c","usage":{"input_tokens":1}}}"#;
    let delta = |t: &str| {
        format!(
            "event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\"{t}\"}}}}\n\n"
        )
    };
    let end = "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    let body = |middle: &str| {
        format!(
            "event: message_start\ndata: {start}\n\n{}{middle}{}{end}",
            delta("a "),
            delta("b")
        )
    };
    let raw = |body: String| ServerReply::raw(200, "text/event-stream", body);

    let got = items(raw(body("event: ping\ndata: {garbage\n\n: comment\n\n"))).await;
    assert!(got.iter().all(Result::is_ok), "{got:?}");
    assert_eq!(text(&got), "a b");

    let got = items(raw(body("data: {\"text\": \"lost\"}\n\n"))).await;
    assert_eq!(text(&got), "a ");
    assert_eq!(fault(&got), Some((StreamFault::Protocol, 1)));

    let text_not_a_string = "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":7}}\n\n";
    let got = items(raw(body(text_not_a_string))).await;
    assert_eq!(fault(&got), Some((StreamFault::Protocol, 1)));
}

/// The SSE events' data of a streamed call to the HTTP server in front of
/// the Anthropic client, answered by `reply`.
async fn over_http(reply: ServerReply) -> Vec<String> {
    let upstream = MockServer::start().await;
    upstream.always(CLAUDE, reply);
    // The server must outlive the call: it is dropped at the end.
    let router = Server::builder(BoxChatService::new(client(&upstream)))
        .build()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let never = std::future::pending::<()>();
    tokio::spawn(llm_fallback::server::serve(
        listener,
        router,
        never,
        Duration::from_secs(1),
    ));
    let body = json!({"model": CLAUDE, "stream": true,
        "messages": [{"role": "user", "content": "hi"}]});
    let text = reqwest::Client::new()
        .post(format!("http://{addr}/v1/chat/completions"))
        .json(&body)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .map(str::to_owned)
        .collect()
}

fn content(events: &[String]) -> String {
    events
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(e).ok())
        .filter_map(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect()
}

#[tokio::test]
async fn over_http_a_mid_stream_error_or_broken_event_ends_with_an_error_event_and_no_done() {
    for (reply, delivered) in [
        (
            ServerReply::text("a b c d").error_event_after(2, "overloaded_error", "busy"),
            "a b ",
        ),
        (ServerReply::text("a b c d").broken_chunk_after(2), "a b "),
        (
            ServerReply::text("a b c d")
                .without_finish_reason()
                .without_done(),
            "a b c d",
        ),
    ] {
        let events = over_http(reply).await;
        assert_eq!(content(&events), delivered, "{events:?}");
        let last = events.last().unwrap();
        assert!(last.contains("\"error\""), "{events:?}");
        assert!(!events.iter().any(|e| e == "[DONE]"), "{events:?}");
    }
    let events = over_http(ServerReply::text("a b c d")).await;
    assert_eq!(content(&events), "a b c d");
    assert_eq!(events.last().unwrap(), "[DONE]");
}
