//! Stream deadlines and mid-stream recovery set in a config, over real
//! sockets on real time (paused time would fire deadlines while a request is
//! on its way, tokio-rs/tokio#4522): a deadline that must fire is short and
//! the mock stays silent far longer; the others are generous.

use std::time::Duration;

use llm_fallback::chat::{AttemptLog, Role, StreamFault};
use llm_fallback::mock::{MockServer, ServerReply};
use llm_fallback::{ErrorKind, Stack};
use tokio::time::Instant;
use tower::ServiceExt;

use crate::common::{answer, items, text, words};
use crate::*;

/// Providers `p` and `q` (prefill as given), both served by `server`.
fn config(server: &MockServer, q_prefills: bool, rest: &str) -> Stack {
    let url = server.base_url();
    stack(
        &format!(
            r#"
            seed = 5
            [providers.p]
            kind = "openai"
            base_url = "{url}"
            [providers.q]
            kind = "openai"
            base_url = "{url}"
            supports_prefill = {q_prefills}
            {rest}
            "#
        ),
        &[],
    )
}

#[tokio::test]
async fn first_token_from_the_config_moves_a_silent_model_on_to_the_next() {
    let server = MockServer::start().await;
    // Silent for an hour: only the deadline ends the wait.
    let slow = answer(5).first_token_after(Duration::from_secs(3600));
    server.always("slow", slow);
    server.always("fast", answer(5));
    let stack = config(
        &server,
        false,
        r#"
        [routes]
        chat = ["p/slow", "q/fast"]
        [timeout]
        first_token = { models = { "p/slow" = "200ms" } }
        "#,
    );

    let started = Instant::now();
    let response = stack.oneshot(chat("chat", true)).await.unwrap();
    let waited = started.elapsed();

    assert_eq!(response.model(), "q/fast");
    assert!(
        waited >= Duration::from_millis(200) && waited < Duration::from_secs(10),
        "the 200 ms deadline of p/slow, not the default 60 s: {waited:?}"
    );
    assert_eq!(server.call_count("slow"), 1, "a timeout is not retried");
    assert_eq!(response.attempts()[0].error, Some(ErrorKind::Timeout));
    assert_eq!(text(&items(response).await), words(0..5));
}

#[tokio::test]
async fn a_cut_stream_is_finished_by_the_fallback_on_the_routes_that_recover() {
    let server = MockServer::start().await;
    server.always("cut", answer(60).cut_after(40));
    server.always("whole", answer(60));
    let stack = config(
        &server,
        false,
        r#"
        [routes]
        story = ["p/cut", "q/whole"]
        plain = ["p/cut", "q/whole"]
        [fallback]
        recover_streams = { models = { story = true } }
        "#,
    );

    let mut request = chat("story", true);
    let log = AttemptLog::of(&mut request);
    let items_ = items(stack.clone().oneshot(request).await.unwrap()).await;
    assert!(items_.iter().all(Result::is_ok), "{:?}", errors(&items_));
    assert_eq!(
        text(&items_),
        words(0..60),
        "the whole answer, exactly once"
    );
    let last = items_.last().unwrap().as_ref().unwrap();
    assert_eq!(last.model, "p/cut", "one stream: the model seen first");
    assert_eq!(finished_by(&log), Some("q/whole".to_owned()));

    // The route not listed keeps the default: a clean error, never a truncated success.
    let items_ = items(stack.oneshot(chat("plain", true)).await.unwrap()).await;
    let error = items_.last().unwrap().as_ref().unwrap_err();
    assert_eq!(error.stream_fault().map(|f| f.0), Some(StreamFault::Cut));
    assert_eq!(text(&items_), words(0..40));
}

#[tokio::test]
async fn a_provider_declared_to_prefill_continues_the_partial_answer() {
    let server = MockServer::start().await;
    server.always("cut", answer(60).cut_after(40));
    server.always("rest", ServerReply::text(words(40..60)).in_chunks(20));
    let stack = config(
        &server,
        true,
        r#"
        [routes]
        story = ["p/cut", "q/rest"]
        [fallback]
        recover_streams = true
        "#,
    );

    let items_ = items(stack.oneshot(chat("story", true)).await.unwrap()).await;

    assert!(items_.iter().all(Result::is_ok), "{:?}", errors(&items_));
    assert_eq!(text(&items_), words(0..60));
    let call = server
        .calls()
        .into_iter()
        .find(|c| c.model == "rest")
        .unwrap();
    let last = call.messages.last().unwrap();
    assert_eq!((last.role, last.text()), (Role::Assistant, words(0..40)));
}

#[tokio::test]
async fn a_weighted_route_recovers_and_chunks_keep_the_model_seen_first() {
    let server = MockServer::start().await;
    server.always("cut", answer(60).cut_after(40));
    server.always("whole", answer(60));
    let stack = config(
        &server,
        false,
        r#"
        [routes]
        drawn = { weights = { "p/cut" = 1, "q/whole" = 1 } }
        alone = { weights = { "q/whole" = 1 } }
        then_weighted = ["p/cut", "alone"]
        [fallback]
        recover_streams = true
        "#,
    );

    for route in ["drawn", "then_weighted"] {
        let mut request = chat(route, true);
        let log = AttemptLog::of(&mut request);
        let response = stack.clone().oneshot(request).await.unwrap();
        assert_eq!(
            response.model(),
            "p/cut",
            "{route}: the seeded draw starts on the cut one"
        );
        let items_ = items(response).await;
        assert!(
            items_.iter().all(Result::is_ok),
            "{route}: {:?}",
            errors(&items_)
        );
        assert_eq!(text(&items_), words(0..60), "{route}");
        let models: Vec<_> = items_.iter().flatten().map(|c| c.model.as_str()).collect();
        assert!(models.iter().all(|m| *m == "p/cut"), "{route}: {models:?}");
        assert_eq!(
            finished_by(&log),
            Some("q/whole".to_owned()),
            "{route}: never _route/..."
        );
    }
}

/// The model whose stream finished the answer, from the attempt log.
fn finished_by(log: &AttemptLog) -> Option<String> {
    log.snapshot()
        .into_iter()
        .rev()
        .find(|a| a.is_success())
        .map(|a| a.model)
}

fn errors(items: &[Result<llm_fallback::chat::ChatChunk, llm_fallback::ChatError>]) -> Vec<String> {
    items
        .iter()
        .filter_map(|i| i.as_ref().err())
        .map(ToString::to_string)
        .collect()
}
