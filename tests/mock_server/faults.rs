//! Scripted faults, delays and hangs on the wire, and the server's
//! lifetime.

use super::*;

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
