//! A reload under load: streams in flight finish on the stack they started
//! on, new requests go to the new one, and none is lost.

use std::time::Duration;

use futures_util::StreamExt;
use llm_fallback::mock::{MockServer, ServerReply};
use serde_json::json;

use super::{config, Gateway, KEY};
use crate::waiting::poll_until;

/// Three content chunks with a pause after the first, so each stream is
/// still being answered while the reloads happen.
fn slow_stream() -> ServerReply {
    ServerReply::text("one two three")
        .in_chunks(3)
        .stall_after(1, Duration::from_millis(400))
}

/// Reads a whole SSE body; true if it ended with `[DONE]` and no error.
async fn finish(
    mut body: impl futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin,
    mut text: String,
) -> (bool, String) {
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(bytes) => text.push_str(&String::from_utf8_lossy(&bytes)),
            Err(e) => return (false, format!("{text}\n(body error: {e})")),
        }
    }
    let done = text.trim_end().ends_with("data: [DONE]") && !text.contains("\"error\"");
    (done, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_under_concurrent_streams_loses_none() {
    let old = MockServer::start().await;
    let new = MockServer::start().await;
    old.always("gpt", slow_stream());
    new.always("gpt", slow_stream());
    let before = config(&old.base_url(), r#"chat = ["mock/gpt"]"#, "");
    let after = config(&new.base_url(), r#"chat = ["mock/gpt"]"#, "");
    let gw = Gateway::start(&before).await;

    let open_stream = || {
        let request = gw
            .http
            .post(gw.url("/v1/chat/completions"))
            .bearer_auth(KEY);
        let body = json!({"model": "chat", "stream": true,
                          "messages": [{"role": "user", "content": "hi"}]});
        request.json(&body).send()
    };
    // Eight streams in flight: each has sent its first chunk.
    let mut in_flight = Vec::new();
    for _ in 0..8 {
        let response = open_stream().await.unwrap();
        assert_eq!(response.status(), 200);
        let mut body = response.bytes_stream();
        let mut text = String::new();
        while !text.contains("one") {
            let bytes = body.next().await.expect("a first chunk").unwrap();
            text.push_str(&String::from_utf8_lossy(&bytes));
        }
        in_flight.push(tokio::spawn(finish(body, text)));
    }
    assert_eq!(old.call_count("gpt"), 8);

    // Reloads back and forth while new streams keep starting.
    let during = {
        let client = gw.http.clone();
        let url = gw.url("/v1/chat/completions");
        tokio::spawn(async move {
            let mut outcomes = Vec::new();
            for _ in 0..6 {
                let body = json!({"model": "chat", "stream": true,
                                  "messages": [{"role": "user", "content": "hi"}]});
                let response = client
                    .post(&url)
                    .bearer_auth(KEY)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
                outcomes.push(finish(response.bytes_stream(), String::new()).await);
            }
            outcomes
        })
    };
    for (i, toml) in [&after, &before, &after].into_iter().enumerate() {
        gw.write(toml);
        let generation = gw.reloader.clone().reload_in_background().await.unwrap();
        assert_eq!(generation.number, i as u64 + 2);
    }
    for stream in in_flight {
        let (done, text) = stream.await.unwrap();
        assert!(
            done,
            "a stream in flight during the reloads was cut:\n{text}"
        );
    }
    for (done, text) in during.await.unwrap() {
        assert!(done, "a stream started during the reloads was cut:\n{text}");
    }

    // The last config points at `new`: new calls go there.
    let calls_before = new.call_count("gpt");
    let response = gw.chat("chat").await;
    assert_eq!(response.status(), 200);
    poll_until("the new provider is called", async || {
        new.call_count("gpt") == calls_before + 1
    })
    .await;
    assert_eq!(gw.reloader.generation().number, 4);
}
