//! Every call ends by itself under the defaults: a stack built from a config
//! that sets no timeout at all bounds a complete answer by
//! `timeout::DEFAULT_ATTEMPT` (60 s) and falls back; streams keep their own
//! deadlines. In-process providers on paused time for the clock, mock
//! servers on real sockets (short overrides, real time) for the wiring.

use std::time::Duration;

use llm_fallback::layers::timeout::DEFAULT_ATTEMPT;
use llm_fallback::mock::{MockProvider, MockReply, MockServer, ServerReply};
use llm_fallback::{ChatRequest, Config, ErrorKind, Message, Stack};
use tokio::time::Instant;
use tower::ServiceExt;

use super::support::{call, stack, PLAIN};

/// A provider that accepts the call and never answers (in tokio time).
const NEVER: Duration = Duration::from_secs(100 * 24 * 3600);

fn paused_stack(extra: &str) -> (Stack, MockProvider, MockProvider) {
    let silent = MockProvider::new();
    silent.always("m", MockReply::text("too late").after(NEVER));
    let fine = MockProvider::new();
    let toml = format!("{PLAIN}\n{extra}\n[routes]\nchat = [\"silent/m\", \"fine/m\"]\n");
    let stack = Stack::builder()
        .config(Config::from_toml_str(&toml).unwrap())
        .provider("silent", silent.clone())
        .provider("fine", fine.clone())
        .build()
        .unwrap();
    (stack, silent, fine)
}

fn request(stream: bool) -> ChatRequest {
    ChatRequest::new("chat", [Message::user("hi")]).with_stream(stream)
}

#[tokio::test(start_paused = true)]
async fn with_no_timeout_configured_a_silent_provider_fails_over_after_the_default() {
    let (stack, silent, fine) = paused_stack("");
    let start = Instant::now();
    let served = stack.service().oneshot(request(false)).await.unwrap();

    assert_eq!(start.elapsed(), DEFAULT_ATTEMPT);
    assert_eq!(served.model(), "fine/m");
    assert_eq!(served.attempts()[0].model, "silent/m");
    assert_eq!(served.attempts()[0].error, Some(ErrorKind::Timeout));
    assert_eq!((silent.call_count("m"), fine.call_count("m")), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn a_silent_stream_fails_over_at_its_first_token_deadline() {
    let (stack, _silent, _fine) = paused_stack("");
    let start = Instant::now();
    let served = stack.service().oneshot(request(true)).await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(60));
    assert_eq!(served.model(), "fine/m");
}

#[tokio::test(start_paused = true)]
async fn the_complete_answer_default_leaves_streams_to_their_own_deadlines() {
    let (stack, silent, _fine) = paused_stack("[timeout]\nfirst_token = \"300s\"");
    silent.always(
        "m",
        MockReply::text("slow thinker").after(Duration::from_secs(200)),
    );
    let served = stack.service().oneshot(request(true)).await.unwrap();
    assert_eq!(served.model(), "silent/m");
    // A complete answer that slow is cut at the default.
    let served = stack.service().oneshot(request(false)).await.unwrap();
    assert_eq!(served.model(), "fine/m");
}

#[tokio::test(start_paused = true)]
async fn an_explicit_none_turns_the_default_off() {
    let (stack, _silent, fine) = paused_stack("[timeout]\nattempt = \"none\"");
    let call = stack.service().oneshot(request(false));
    let waited = tokio::time::timeout(Duration::from_secs(3600), call).await;
    assert!(waited.is_err(), "no deadline: still waiting after an hour");
    assert_eq!(fine.call_count("m"), 0);
}

#[tokio::test]
async fn a_stack_from_a_config_without_timeouts_reports_the_default_deadlines() {
    let server = MockServer::start().await;
    let stack = stack(&server, "[routes]\nchat = [\"a/m\"]\n");
    assert_eq!(
        stack.describe_timeouts(),
        "total none; attempt: complete answers 60s, streams none; \
         streams: headers 15s, first token 60s, idle 30s, total none; connect 10s"
    );
}

#[tokio::test]
async fn over_sockets_a_silent_provider_fails_over_at_the_attempt_deadline() {
    let server = MockServer::start().await;
    server.always("silent", ServerReply::hang());
    let stack = stack(
        &server,
        &format!(
            "{PLAIN}\n[timeout]\nattempt = \"300ms\"\nheaders = \"300ms\"\n\
             [routes]\nchat = [\"a/silent\", \"b/fine\"]\n"
        ),
    );
    for stream in [false, true] {
        server.clear_calls();
        let started = std::time::Instant::now();
        let request = request(stream);
        let served = stack.service().oneshot(request).await.unwrap();
        assert_eq!(served.model(), "b/fine", "stream: {stream}");
        assert_eq!(server.called_models(), ["silent", "fine"]);
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert_eq!(served.attempts()[0].error, Some(ErrorKind::Timeout));
    }
    let e = call(&stack, "a/silent").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout);
}
