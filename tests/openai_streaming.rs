//! Streaming through the OpenAI and Azure clients against the mock provider
//! server over real sockets: commit point, faults, tolerance.

use std::time::Duration;

use futures_util::StreamExt;
use llm_fallback::chat::{ChatChunk, MalformedChunks, StreamFault};
use llm_fallback::mock::{MockServer, ServerReply};
use llm_fallback::providers::openai::{Azure, OpenAi};
use llm_fallback::{ChatError, ChatRequest, ChatResponse, ErrorKind, Message};
use serde_json::json;
use tokio::time::Instant;
use tower::ServiceExt;

const MODEL: &str = "gpt-4o-mini";

fn client(server: &MockServer) -> OpenAi {
    OpenAi::builder()
        .base_url(server.base_url())
        .api_key("sk-test")
        .build()
        .unwrap()
}

fn stream_request() -> ChatRequest {
    ChatRequest::new(MODEL, [Message::user("tell me a story")])
        .with_stream(true)
        .with_extra("stream_options", json!({"include_usage": true}))
}

async fn call(reply: ServerReply) -> (MockServer, Result<ChatResponse, ChatError>) {
    let server = MockServer::start().await;
    server.always(MODEL, reply);
    let result = client(&server).oneshot(stream_request()).await;
    assert_eq!(server.call_count(MODEL), 1, "the client never retries");
    (server, result)
}

async fn items(response: ChatResponse) -> Vec<Result<ChatChunk, ChatError>> {
    response.into_stream().expect("a stream").collect().await
}

fn text(items: &[Result<ChatChunk, ChatError>]) -> String {
    items.iter().flatten().map(ChatChunk::text).collect()
}

#[tokio::test]
async fn a_stream_delivers_the_whole_answer_with_usage() {
    let (server, result) = call(ServerReply::text("once upon a time")).await;
    let response = result.unwrap();
    assert_eq!(response.model(), MODEL);
    let completion = response
        .into_stream()
        .unwrap()
        .collect_completion()
        .await
        .unwrap();
    assert_eq!(completion.choices[0].message.text(), "once upon a time");
    assert_eq!(completion.choices[0].finish_reason.as_deref(), Some("stop"));
    let usage = completion.usage.unwrap();
    assert_eq!((usage.prompt_tokens, usage.completion_tokens), (4, 4));
    assert!(server.calls()[0].stream);
}

#[tokio::test]
async fn azure_streams_too() {
    let server = MockServer::start().await;
    let azure = Azure::builder()
        .endpoint(server.endpoint())
        .api_key("k")
        .build()
        .unwrap();
    let response = azure.oneshot(stream_request()).await.unwrap();
    let completion = response
        .into_stream()
        .unwrap()
        .collect_completion()
        .await
        .unwrap();
    assert_eq!(completion.choices[0].message.text(), "ok from gpt-4o-mini");
}

#[tokio::test]
async fn an_error_status_on_a_stream_request_is_an_ordinary_error() {
    let (_server, result) =
        call(ServerReply::status(429).with_retry_after(Duration::from_secs(3))).await;
    let e = result.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    assert_eq!(e.retry_after(), Some(Duration::from_secs(3)));
}

#[tokio::test]
async fn an_error_event_before_content_is_an_ordinary_error() {
    let reply =
        ServerReply::text("never sent").error_event_after(0, "rate_limit_exceeded", "slow down");
    let e = call(reply).await.1.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    assert_eq!(
        (e.code(), e.message()),
        (Some("rate_limit_exceeded"), "slow down")
    );

    let reply = ServerReply::text("never sent").error_event_after(0, "server_error", "overloaded");
    let e = call(reply).await.1.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Server);
    assert_eq!(e.model(), Some(MODEL));
}

#[tokio::test]
async fn an_error_event_after_content_ends_the_stream_with_a_protocol_fault() {
    let reply =
        ServerReply::text("one two three four").error_event_after(2, "server_error", "overloaded");
    let items = items(call(reply).await.1.unwrap()).await;
    assert_eq!(text(&items), "one two ");
    let e = items.last().unwrap().as_ref().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::StreamInterrupted);
    assert_eq!(e.stream_fault(), Some((StreamFault::Protocol, 2)));
    assert!(e.message().contains("overloaded"), "{e}");
}

#[tokio::test]
async fn a_malformed_event_after_content_is_a_counted_protocol_fault() {
    let (_server, result) = call(ServerReply::text("one two three").malformed_after(1)).await;
    let response = result.unwrap();
    let counter = response
        .extensions()
        .get::<MalformedChunks>()
        .unwrap()
        .clone();
    let items = items(response).await;
    assert_eq!(text(&items), "one ", "nothing after the broken event");
    let e = items.last().unwrap().as_ref().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::StreamInterrupted);
    assert_eq!(e.stream_fault(), Some((StreamFault::Protocol, 1)));
    assert_eq!(e.model(), Some(MODEL));
    assert_eq!(counter.count(), 1);
}

#[tokio::test]
async fn a_malformed_event_before_content_fails_the_attempt_and_counts_into_the_requests_counter() {
    let server = MockServer::start().await;
    server.always(MODEL, ServerReply::text("a b").malformed_after(0));
    let counter = MalformedChunks::new();
    let mut request = stream_request();
    request.extensions_mut().insert(counter.clone());
    let e = client(&server).oneshot(request).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Server, "retry and fallback apply");
    assert!(e.message().contains("cannot be read"), "{e}");
    assert_eq!(counter.count(), 1);
}

#[tokio::test]
async fn a_cut_after_content_ends_with_stream_interrupted_never_silently() {
    let reply = ServerReply::text("abcdefghij").in_chunks(10).cut_after(4);
    let items = items(call(reply).await.1.unwrap()).await;
    assert_eq!(text(&items), "abcd");
    let e = items.last().unwrap().as_ref().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::StreamInterrupted);
    assert_eq!(e.stream_fault(), Some((StreamFault::Cut, 4)));
    assert_eq!(e.model(), Some(MODEL));
}

#[tokio::test]
async fn a_cut_before_content_is_an_ordinary_connect_error() {
    let e = call(ServerReply::text("never sent").cut_after(0))
        .await
        .1
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Connect, "{e}");
}

#[tokio::test]
async fn a_missing_done_after_the_finish_reason_is_a_complete_answer() {
    let (_server, result) = call(ServerReply::text("all done here").without_done()).await;
    let completion = result
        .unwrap()
        .into_stream()
        .unwrap()
        .collect_completion()
        .await
        .unwrap();
    assert_eq!(completion.choices[0].message.text(), "all done here");
    assert_eq!(completion.usage.unwrap().completion_tokens, 3);
}

#[tokio::test]
async fn an_end_without_done_before_the_finish_reason_is_a_cut() {
    let sse = concat!(
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"half\"}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\" an answer\"}}]}\n\n",
    );
    let items = items(
        call(ServerReply::raw(200, "text/event-stream", sse))
            .await
            .1
            .unwrap(),
    )
    .await;
    assert_eq!(text(&items), "half an answer");
    let e = items.last().unwrap().as_ref().unwrap_err();
    assert_eq!(e.stream_fault(), Some((StreamFault::Cut, 2)));
}

#[tokio::test]
async fn a_stream_without_content_is_an_ordinary_error() {
    let (_server, result) = call(ServerReply::raw(
        200,
        "text/event-stream",
        "data: [DONE]\n\n",
    ))
    .await;
    let e = result.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Server);
    assert!(e.message().contains("before any content"), "{e}");
}

#[tokio::test]
async fn the_response_resolves_at_the_first_content_chunk() {
    let server = MockServer::start().await;
    server.always(
        MODEL,
        ServerReply::text("late answer")
            .after(Duration::from_millis(50))
            .first_token_after(Duration::from_millis(200)),
    );
    let started = Instant::now();
    let response = client(&server).oneshot(stream_request()).await.unwrap();
    // Real time (sockets): resolving at the head would take about 50 ms.
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "{:?}",
        started.elapsed()
    );
    let items = items(response).await;
    assert!(
        items[0].as_ref().unwrap().choices[0].delta.role.is_some(),
        "preamble kept"
    );
    assert_eq!(text(&items), "late answer");
}

#[tokio::test]
async fn a_stall_delays_the_rest_of_the_stream() {
    // From before the call: the mock may stall before the response resolves.
    let started = Instant::now();
    let (_server, result) =
        call(ServerReply::text("a b c d e").stall_after(3, Duration::from_millis(200))).await;
    let completion = result
        .unwrap()
        .into_stream()
        .unwrap()
        .collect_completion()
        .await
        .unwrap();
    assert_eq!(completion.choices[0].message.text(), "a b c d e");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(200) && waited < Duration::from_secs(10),
        "{waited:?}"
    );
}
