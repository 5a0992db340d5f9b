//! Successful answers: JSON and SSE framing, the usage chunk, a stream
//! that faults after it started.

use super::*;

/// The `data:` payloads of an SSE body, checking the framing byte for byte.
fn sse_events(text: &str) -> Vec<&str> {
    assert!(text.ends_with("\n\n"), "unterminated event in {text:?}");
    text.split_terminator("\n\n")
        .map(|event| {
            let data = event
                .strip_prefix("data: ")
                .expect("every event is `data: ...`");
            assert!(!data.contains('\n'), "one line per event: {event:?}");
            data
        })
        .collect()
}

fn chunks_of(events: &[&str]) -> Vec<Value> {
    events
        .iter()
        .filter(|e| **e != "[DONE]")
        .map(|e| serde_json::from_str(e).unwrap())
        .collect()
}

fn text_of(chunks: &[Value]) -> String {
    chunks
        .iter()
        .flat_map(|c| c["choices"].as_array().cloned().unwrap_or_default())
        .filter_map(|c| c["delta"]["content"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn json_answer_names_the_served_model_and_what_it_took() {
    let mock = MockProvider::new();
    mock.script("a", [MockReply::error(ErrorKind::Server)]);
    mock.always("b", MockReply::text("hello from b"));
    let stack = TinyFallback::new(&mock, &[("smart", &["openai/a", "azure/b"])]);
    let http = start(
        Server::builder(stack)
            .route("smart", ["openai/a", "azure/b"])
            .build()
            .unwrap(),
    )
    .await;

    let response = http.chat(&ask("smart")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "content-type"), Some("application/json"));
    assert_eq!(header(&response, MODEL_HEADER), Some("azure/b"));
    assert_eq!(header(&response, ATTEMPTS_HEADER), Some("2"));
    assert_eq!(header(&response, FALLBACKS_HEADER), Some("1"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "azure/b");
    assert_eq!(body["choices"][0]["message"]["content"], "hello from b");
    assert_eq!(body["usage"]["completion_tokens"], 3);
    assert_eq!(mock.called_models(), ["a", "b"]);
}

#[tokio::test]
async fn sse_answer_is_framed_like_openai_and_ends_with_done() {
    // The provider names its chunks `a`; the caller sees the served id.
    let mock = MockProvider::new();
    mock.always("a", MockReply::text("one two three"));
    let http = start(Server::builder(providers(&mock)).build().unwrap()).await;

    let response = http.chat(&ask_stream("openai/a", false)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "content-type"), Some("text/event-stream"));
    assert_eq!(header(&response, MODEL_HEADER), Some("openai/a"));
    assert_eq!(header(&response, ATTEMPTS_HEADER), Some("1"));
    assert_eq!(header(&response, FALLBACKS_HEADER), Some("0"));
    let text = response.text().await.unwrap();
    assert!(text.ends_with("data: [DONE]\n\n"), "{text:?}");
    let events = sse_events(&text);
    assert_eq!(events.iter().filter(|e| **e == "[DONE]").count(), 1);
    let chunks = chunks_of(&events);
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(text_of(&chunks), "one two three");
    for chunk in &chunks {
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert_eq!(chunk["model"], "openai/a");
    }
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "stop"
    );
}

#[tokio::test]
async fn usage_chunk_is_sent_only_when_the_caller_asks_for_it() {
    // The mock always ends its streams with a usage-only chunk, as a lower
    // layer asking upstream for usage would.
    let mock = MockProvider::new();
    mock.always("openai/a", MockReply::text("one two three"));
    let http = start(Server::builder(mock).build().unwrap()).await;

    let text = http
        .chat(&ask_stream("openai/a", false))
        .await
        .text()
        .await
        .unwrap();
    let chunks = chunks_of(&sse_events(&text));
    assert!(chunks.iter().all(|c| c.get("usage").is_none()), "{text}");
    assert!(chunks
        .iter()
        .all(|c| !c["choices"].as_array().unwrap().is_empty()));

    let text = http
        .chat(&ask_stream("openai/a", true))
        .await
        .text()
        .await
        .unwrap();
    let chunks = chunks_of(&sse_events(&text));
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"], json!([]));
    assert_eq!(last["usage"]["completion_tokens"], 3);
    assert_eq!(last["usage"]["prompt_tokens"], 2);
    assert_eq!(text_of(&chunks), "one two three");
}

#[tokio::test]
async fn a_stream_fault_ends_with_an_error_event_and_no_done() {
    let mock = MockProvider::new();
    mock.always("openai/a", MockReply::stream_cut("one two three four", 2));
    let http = start(Server::builder(mock).build().unwrap()).await;

    let response = http.chat(&ask_stream("openai/a", true)).await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "the stream was committed"
    );
    let text = response.text().await.unwrap();
    assert!(!text.contains("[DONE]"), "{text}");
    let events = sse_events(&text);
    let (error, chunks) = events.split_last().unwrap();
    assert_eq!(text_of(&chunks_of(chunks)), "one two ");
    let error: Value = serde_json::from_str(error).unwrap();
    assert_eq!(error["error"]["type"], "upstream_error");
    assert_eq!(error["error"]["code"], "stream_interrupted");
    assert!(error["error"]["message"]
        .as_str()
        .unwrap()
        .contains("cut after 2 chunks"));
    http.still_serves().await;
}
