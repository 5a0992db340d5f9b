//! The all-failed error: every attempt listed in order, none twice.

use super::*;

/// A stand-in for the Retry layer: up to `times` calls per request, each
/// logged by this inner layer as the attempt-log protocol says.
fn retrying(
    mock: MockProvider,
    times: usize,
) -> impl Service<ChatRequest, Response = ChatResponse, Error = ChatError, Future: Send>
       + Clone
       + Send
       + 'static {
    service_fn(move |mut req: ChatRequest| {
        let mock = mock.clone();
        async move {
            let log = AttemptLog::of(&mut req);
            let mut last = None;
            for _ in 0..times {
                let start = Instant::now();
                match mock.clone().oneshot(req.clone()).await {
                    Ok(response) => {
                        log.push(Attempt::success(req.model(), start.elapsed()));
                        return Ok(response);
                    }
                    Err(e) => {
                        log.push(Attempt::failure(req.model(), &e, start.elapsed()));
                        last = Some(e);
                    }
                }
            }
            Err(last.expect("at least one try"))
        }
    })
}

#[tokio::test(start_paused = true)]
async fn when_all_fail_the_error_lists_every_attempt_in_order() {
    let mock = MockProvider::new();
    mock.always(
        AZURE,
        MockReply::error(ErrorKind::Auth).after(Duration::from_millis(100)),
    );
    mock.always(
        OPENAI,
        MockReply::error(ErrorKind::Server).after(Duration::from_millis(200)),
    );
    mock.always(
        GROQ,
        MockReply::error(ErrorKind::RateLimited).after(Duration::from_millis(300)),
    );
    let layer = ProviderFallbackLayer::builder()
        .group([AZURE, OPENAI, GROQ])
        .build()
        .unwrap();
    let start = Instant::now();

    let e = send(&layer, retrying(mock.clone(), 1), AZURE)
        .await
        .unwrap_err();

    assert_eq!(
        e.to_string(),
        "all 3 candidates failed: azure/gpt-4o-mini: 401 Unauthorized (1 call); \
         openai/gpt-4o-mini: 500 Internal Server Error (1 call); \
         groq/llama-3.1-8b: 429 Too Many Requests (1 call)"
    );
    assert_eq!(
        e.kind(),
        ErrorKind::RateLimited,
        "the last candidate's kind"
    );
    let summary: Vec<_> = e
        .attempts()
        .iter()
        .map(|a| (a.model.as_str(), a.error, a.latency.as_millis()))
        .collect();
    assert_eq!(
        summary,
        [
            (AZURE, Some(ErrorKind::Auth), 100),
            (OPENAI, Some(ErrorKind::Server), 200),
            (GROQ, Some(ErrorKind::RateLimited), 300),
        ]
    );
    // The next candidate is called at once: no backoff between candidates.
    assert_eq!(start.elapsed(), Duration::from_millis(600));
}

#[tokio::test(start_paused = true)]
async fn attempts_logged_by_an_inner_layer_are_not_logged_twice() {
    let mock = MockProvider::new();
    failing(&mock, AZURE, ErrorKind::Auth);
    failing(&mock, OPENAI, ErrorKind::Server);
    let layer = ProviderFallbackLayer::builder()
        .group([AZURE, OPENAI])
        .build()
        .unwrap();

    let e = send(&layer, retrying(mock.clone(), 3), AZURE)
        .await
        .unwrap_err();

    assert_eq!(e.attempts().len(), 6);
    assert_eq!(
        e.to_string(),
        "all 2 candidates failed: azure/gpt-4o-mini: 401 Unauthorized (3 calls); \
         openai/gpt-4o-mini: 500 Internal Server Error (3 calls)"
    );
}
