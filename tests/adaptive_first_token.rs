//! A learned first-token deadline: once a model's first tokens are known,
//! a silent attempt costs a multiple of their percentile, not the whole
//! configured deadline.

use std::time::Duration;

use llm_fallback::chat::TimeoutKind;
use llm_fallback::layers::timeout::{AdaptiveFirstToken, StreamDeadlines};
use llm_fallback::mock::{MockProvider, MockReply};
use llm_fallback::{
    ChatRequest, Config, ErrorKind, Message, ProviderFallbackLayer, Stack, TimeoutLayer,
};
use tokio::time::Instant;
use tower::{ServiceBuilder, ServiceExt};

const PRIMARY: &str = "azure/gpt-4o-mini";
const BACKUP: &str = "openai/gpt-4o-mini";

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn stream(model: &str) -> ChatRequest {
    ChatRequest::new(model, [Message::user("hello")]).with_stream(true)
}

fn attempt_layer(adaptive: AdaptiveFirstToken) -> TimeoutLayer {
    TimeoutLayer::streams(StreamDeadlines::new().with_first_token(Duration::from_secs(30)))
        .with_adaptive_first_token(adaptive)
}

/// First tokens after 100, 200, … 500 ms, `n` of them.
fn answers(n: usize) -> impl Iterator<Item = MockReply> {
    (0..n).map(|i| MockReply::text("fine thanks").first_token_after(ms(100 * (i as u64 % 5 + 1))))
}

#[tokio::test(start_paused = true)]
async fn a_silent_attempt_is_cut_at_the_multiple_of_the_learned_percentile() {
    let mock = MockProvider::new();
    mock.script(PRIMARY, answers(20));
    let adaptive = AdaptiveFirstToken::builder().build().unwrap();
    let svc = ServiceBuilder::new()
        .layer(attempt_layer(adaptive.clone()))
        .service(mock.clone());
    for _ in 0..20 {
        svc.clone().oneshot(stream(PRIMARY)).await.unwrap();
    }
    // The 95th percentile is 500 ms: 4 × 500 ms.
    assert_eq!(
        adaptive.deadline(PRIMARY, Duration::from_secs(30)),
        ms(2000)
    );

    mock.always(
        PRIMARY,
        MockReply::text("late").first_token_after(Duration::from_secs(25)),
    );
    let start = Instant::now();
    let error = svc.oneshot(stream(PRIMARY)).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Timeout);
    assert_eq!(error.timeout_kind(), Some(TimeoutKind::FirstToken));
    assert_eq!(start.elapsed(), ms(2000));
}

#[tokio::test(start_paused = true)]
async fn until_enough_first_tokens_are_seen_the_configured_deadline_applies() {
    let mock = MockProvider::new();
    mock.script(PRIMARY, answers(19));
    let adaptive = AdaptiveFirstToken::builder().build().unwrap();
    let svc = ServiceBuilder::new()
        .layer(attempt_layer(adaptive.clone()))
        .service(mock.clone());
    for _ in 0..19 {
        svc.clone().oneshot(stream(PRIMARY)).await.unwrap();
    }
    mock.always(
        PRIMARY,
        MockReply::text("late").first_token_after(Duration::from_secs(60)),
    );
    let start = Instant::now();
    let error = svc.oneshot(stream(PRIMARY)).await.unwrap_err();
    assert_eq!(error.timeout_kind(), Some(TimeoutKind::FirstToken));
    assert_eq!(start.elapsed(), Duration::from_secs(30));
    // Another model learned nothing from these.
    assert_eq!(
        adaptive.deadline(BACKUP, Duration::from_secs(30)),
        Duration::from_secs(30)
    );
}

#[tokio::test(start_paused = true)]
async fn the_floor_and_the_configured_deadline_bound_the_learned_one() {
    let adaptive = AdaptiveFirstToken::builder()
        .min_observations(1)
        .floor(Duration::from_secs(1))
        .build()
        .unwrap();
    adaptive.observe("a/fast", ms(10));
    assert_eq!(
        adaptive.deadline("a/fast", Duration::from_secs(30)),
        Duration::from_secs(1)
    );
    adaptive.observe("a/slow", Duration::from_secs(20));
    assert_eq!(
        adaptive.deadline("a/slow", Duration::from_secs(30)),
        Duration::from_secs(30)
    );
    // Even an absurd observation saturates instead of overflowing.
    adaptive.observe("a/absurd", Duration::MAX);
    assert_eq!(
        adaptive.deadline("a/absurd", Duration::from_secs(30)),
        Duration::from_secs(30)
    );
}

#[tokio::test(start_paused = true)]
async fn a_model_that_slowed_down_raises_its_deadline_instead_of_being_cut_for_ever() {
    let mock = MockProvider::new();
    mock.script(PRIMARY, answers(20));
    let adaptive = AdaptiveFirstToken::builder()
        .window(20)
        .min_observations(20)
        .build()
        .unwrap();
    let svc = ServiceBuilder::new()
        .layer(attempt_layer(adaptive.clone()))
        .service(mock.clone());
    for _ in 0..20 {
        svc.clone().oneshot(stream(PRIMARY)).await.unwrap();
    }
    assert_eq!(
        adaptive.deadline(PRIMARY, Duration::from_secs(30)),
        ms(2000)
    );

    // Now every first token takes 5 s: the first calls are cut at 2 s, and
    // each cut counts as a first token of at least 2 s.
    mock.always(
        PRIMARY,
        MockReply::text("slow now").first_token_after(Duration::from_secs(5)),
    );
    let mut cut = 0;
    loop {
        match svc.clone().oneshot(stream(PRIMARY)).await {
            Ok(response) => {
                assert_eq!(response.model(), PRIMARY);
                break;
            }
            Err(e) => {
                assert_eq!(e.timeout_kind(), Some(TimeoutKind::FirstToken));
                cut += 1;
                assert!(cut < 5, "still cut after {cut} calls");
            }
        }
    }
    // Two cuts at 2 s make the p95 2 s (an 8 s deadline), which 5 s passes.
    assert_eq!(cut, 2);
    assert!(adaptive.deadline(PRIMARY, Duration::from_secs(30)) >= Duration::from_secs(8));
}

#[tokio::test(start_paused = true)]
async fn a_route_moves_on_to_its_fallback_after_the_learned_deadline() {
    let mock = MockProvider::new();
    mock.script(PRIMARY, answers(20));
    mock.always(BACKUP, MockReply::text("from the backup"));
    let fallback = ProviderFallbackLayer::builder()
        .group([PRIMARY, BACKUP])
        .build()
        .unwrap();
    let svc = ServiceBuilder::new()
        .layer(fallback)
        .layer(attempt_layer(
            AdaptiveFirstToken::builder().build().unwrap(),
        ))
        .service(mock.clone());
    for _ in 0..20 {
        svc.clone().oneshot(stream(PRIMARY)).await.unwrap();
    }
    mock.always(
        PRIMARY,
        MockReply::text("silent").first_token_after(Duration::from_secs(3600)),
    );
    let start = Instant::now();
    let response = svc.oneshot(stream(PRIMARY)).await.unwrap();
    assert_eq!(response.model(), BACKUP);
    assert_eq!(start.elapsed(), ms(2000));
    assert_eq!(response.attempts()[0].error, Some(ErrorKind::Timeout));
}

#[tokio::test(start_paused = true)]
async fn a_config_learns_the_first_token_deadline_with_the_configured_one_as_ceiling() {
    // Each provider reaches its mock with the bare model name.
    let (azure, openai) = (MockProvider::new(), MockProvider::new());
    azure.script("gpt-4o-mini", answers(5));
    let config = Config::from_toml_str(
        r#"
        [timeout]
        first_token = "30s"
        adaptive_first_token = { multiple = 3, min_observations = 5, window = 50 }

        [fallback]
        groups = [["azure/gpt-4o-mini", "openai/gpt-4o-mini"]]
        "#,
    )
    .unwrap();
    let stack = Stack::builder()
        .config(config)
        .provider("azure", azure.clone())
        .provider("openai", openai)
        .build()
        .unwrap();
    let timeouts = stack.describe_timeouts();
    assert!(
        timeouts.contains("first token 30s at most (learned: 3 x p95"),
        "{timeouts}"
    );
    let svc = stack.service();
    for _ in 0..5 {
        svc.clone().oneshot(stream(PRIMARY)).await.unwrap();
    }
    azure.always(
        "gpt-4o-mini",
        MockReply::text("silent").first_token_after(Duration::from_secs(3600)),
    );
    let start = Instant::now();
    let response = svc.oneshot(stream(PRIMARY)).await.unwrap();
    assert_eq!(response.model(), BACKUP);
    // 3 × the p95 of 100..500 ms.
    assert_eq!(start.elapsed(), ms(1500));
}

#[test]
fn every_mistake_in_the_section_is_reported_with_its_path() {
    let config = Config::from_toml_str(
        r#"
        [timeout]
        first_token = "none"
        adaptive_first_token = { multiple = 0.5, percentile = 2.0, window = 0 }
        "#,
    )
    .unwrap();
    let error = config.validate_with_env(|_| None).unwrap_err();
    let paths: Vec<_> = error.problems().iter().map(|p| p.path.as_str()).collect();
    for path in [
        "timeout.adaptive_first_token",
        "timeout.adaptive_first_token.multiple",
        "timeout.adaptive_first_token.percentile",
        "timeout.adaptive_first_token.window",
    ] {
        assert!(paths.contains(&path), "{path} missing from {paths:?}");
    }
}

#[test]
fn check_prints_the_learned_percentile_as_written() {
    let config = Config::from_toml_str(
        r#"
        [timeout]
        adaptive_first_token = { percentile = 0.9 }
        "#,
    )
    .unwrap();
    let stack = Stack::builder()
        .config(config)
        .provider("azure", MockProvider::new())
        .build()
        .unwrap();
    let timeouts = stack.describe_timeouts();
    assert!(
        timeouts.contains("4 x p90 of its first tokens"),
        "{timeouts}"
    );
}
