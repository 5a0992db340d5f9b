//! Graceful shutdown: streams in flight finish within the grace, or are cut.

use super::*;

/// A stack whose one stream is fed by the test, chunk by chunk.
fn fed_stack() -> (
    impl Service<ChatRequest, Response = ChatResponse, Error = ChatError, Future = impl Send>
        + Clone
        + Send
        + Sync
        + 'static,
    tokio::sync::mpsc::UnboundedSender<ChatChunk>,
) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<ChatChunk>();
    let rx = Arc::new(Mutex::new(Some(rx)));
    let stack = service_fn(move |request: ChatRequest| {
        let rx = rx.lock().unwrap().take().expect("one call");
        async move {
            let chunks = futures_util::stream::unfold(rx, |mut rx| async move {
                rx.recv().await.map(|c| (Ok(c), rx))
            });
            Ok::<_, ChatError>(ChatResponse::stream(
                request.model(),
                ChatStream::new(chunks),
            ))
        }
    });
    (stack, tx)
}

fn word(text: &str) -> ChatChunk {
    serde_json::from_value(json!({"choices": [{"index": 0, "delta": {"content": text}}]})).unwrap()
}

async fn serve_until(
    router: Router,
    grace: Duration,
) -> (
    String,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let signal = async move {
        let _ = stopped.await;
    };
    let task = tokio::spawn(server::serve(listener, router, signal, grace));
    (base, stop, task)
}

#[tokio::test]
async fn shutdown_lets_a_stream_in_flight_finish() {
    let (stack, feed) = fed_stack();
    let (base, stop, server) = serve_until(
        Server::builder(stack).build().unwrap(),
        Duration::from_secs(60),
    )
    .await;
    feed.send(word("one ")).unwrap();
    let mut response = reqwest::Client::new()
        .post(format!("{base}/v1/chat/completions"))
        .json(&ask_stream("openai/a", false))
        .send()
        .await
        .unwrap();
    let first = response.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("one "));

    stop.send(()).unwrap();
    // New connections are refused once shutdown began.
    let addr = base.trim_start_matches("http://");
    waiting::poll_until("new connections are refused", async || {
        tokio::net::TcpStream::connect(addr).await.is_err()
    })
    .await;
    feed.send(word("two")).unwrap();
    drop(feed);
    let mut rest = Vec::new();
    while let Some(bytes) = response.chunk().await.unwrap() {
        rest.extend_from_slice(&bytes);
    }
    let rest = String::from_utf8(rest).unwrap();
    assert!(
        rest.contains("two") && rest.ends_with("data: [DONE]\n\n"),
        "{rest:?}"
    );
    server.await.unwrap();
}

// Real time (a socket): paused time could cut before the first chunk is read.
#[tokio::test]
async fn shutdown_cuts_a_stream_that_outlasts_the_grace() {
    let (stack, feed) = fed_stack();
    let grace = Duration::from_millis(200);
    let (base, stop, server) = serve_until(Server::builder(stack).build().unwrap(), grace).await;
    feed.send(word("one ")).unwrap();
    let mut response = reqwest::Client::new()
        .post(format!("{base}/v1/chat/completions"))
        .json(&ask_stream("openai/a", false))
        .send()
        .await
        .unwrap();
    response.chunk().await.unwrap().unwrap();

    let started = Instant::now();
    stop.send(()).unwrap();
    let mut rest = Vec::new();
    let ended = loop {
        match response.chunk().await {
            Ok(Some(bytes)) => rest.extend_from_slice(&bytes),
            Ok(None) => break "end",
            Err(_) => break "error",
        }
    };
    server.await.unwrap();
    assert_eq!(
        ended, "error",
        "a cut chunked body is an error for the client"
    );
    assert!(!String::from_utf8_lossy(&rest).contains("[DONE]"));
    let elapsed = started.elapsed();
    assert!(
        elapsed >= grace && elapsed < grace + Duration::from_secs(5),
        "cut at the grace bound: {elapsed:?}"
    );
    drop(feed);
}
