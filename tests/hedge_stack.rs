//! Hedged calls through the stack built from a config (`[fallback.hedge]`):
//! every layer inside a racer (retry, cooldown, deadlines, prepended
//! messages) works as for any attempt.

use std::time::Duration;

use futures_util::StreamExt;
use llm_fallback::chat::Role;
use llm_fallback::mock::{MockProvider, MockReply};
use llm_fallback::{ChatRequest, Config, ErrorKind, Message, Stack};
use tokio::time::Instant;
use tower::{ServiceBuilder, ServiceExt};

const AZURE_MINI: &str = "azure/gpt-4o-mini";
const OPENAI_MINI: &str = "openai/gpt-4o-mini";

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A stack whose `azure` and `openai` providers are one scripted mock that
/// sees full model ids.
fn stack(json: &str) -> (Stack, MockProvider) {
    let config = Config::from_json_str(json).unwrap();
    let mock = MockProvider::new();
    let prefixed = |provider: &'static str| {
        ServiceBuilder::new()
            .map_request(move |mut r: ChatRequest| {
                let full = format!("{provider}/{}", r.model());
                r.set_model(&full);
                r
            })
            .service(mock.clone())
    };
    let stack = Stack::builder()
        .config(config)
        .provider("azure", prefixed("azure"))
        .provider("openai", prefixed("openai"))
        .build()
        .unwrap();
    (stack, mock)
}

const HEDGED: &str = r#"{
    "routes": {"mini": ["azure/gpt-4o-mini", "openai/gpt-4o-mini"]},
    "retry": {"backoff": {"base": "100ms", "jitter": "none"}, "budget": false},
    "model_messages": {"models": {"openai/gpt-4o-mini": [{"role": "system", "content": "be brief"}]}},
    "fallback": {"hedge": {"delay": "500ms", "budget": {"min_per_second": 0, "ratio": 1.0}}}
}"#;

#[tokio::test(start_paused = true)]
async fn a_hedge_set_in_the_config_races_the_next_candidate_with_its_own_retries_and_messages() {
    let (stack, mock) = stack(HEDGED);
    mock.always(
        AZURE_MINI,
        MockReply::text("late").after(Duration::from_secs(60)),
    );
    mock.script(OPENAI_MINI, [MockReply::error(ErrorKind::Server)]);

    let started = Instant::now();
    let request = ChatRequest::new("mini", [Message::user("hello")]);
    let response = stack.oneshot(request).await.unwrap();

    assert_eq!(response.model(), OPENAI_MINI);
    // Hedge at 500 ms, its first try fails, retried after 100 ms.
    assert_eq!(started.elapsed(), ms(600));
    assert_eq!(mock.dropped(), [AZURE_MINI]);
    let log: Vec<_> = response
        .attempts()
        .iter()
        .map(|a| (a.model.as_str(), a.error, a.hedge))
        .collect();
    assert_eq!(
        log,
        [
            (AZURE_MINI, Some(ErrorKind::Cancelled), false),
            (OPENAI_MINI, Some(ErrorKind::Server), true),
            (OPENAI_MINI, None, true),
        ]
    );
    // The hedge got its model's own messages, the first candidate none.
    let calls = mock.calls();
    assert_eq!(calls[0].messages.len(), 1);
    for call in &calls[1..] {
        assert_eq!(call.model, OPENAI_MINI);
        assert_eq!(call.messages[0].role, Role::System);
    }
}

#[tokio::test(start_paused = true)]
async fn a_stream_is_hedged_at_its_first_token_not_its_head_through_the_stack() {
    let (stack, mock) = stack(HEDGED);
    mock.always(
        AZURE_MINI,
        MockReply::text("slow answer")
            .after(ms(10))
            .first_token_after(Duration::from_secs(20)),
    );
    mock.always(OPENAI_MINI, MockReply::text("fast answer").after(ms(100)));

    let started = Instant::now();
    let request = ChatRequest::new("mini", [Message::user("hello")]).with_stream(true);
    let response = stack.oneshot(request).await.unwrap();

    assert_eq!(response.model(), OPENAI_MINI);
    assert_eq!(started.elapsed(), ms(600));
    let mut stream = response.into_stream().unwrap();
    let mut text = String::new();
    while let Some(chunk) = stream.next().await {
        text.push_str(&chunk.unwrap().text());
    }
    assert_eq!(text, "fast answer");
    assert_eq!(mock.dropped(), [AZURE_MINI]);
}

#[tokio::test(start_paused = true)]
async fn without_a_hedge_in_the_config_the_slow_candidate_is_waited_for() {
    let (stack, mock) =
        stack(r#"{"routes": {"mini": ["azure/gpt-4o-mini", "openai/gpt-4o-mini"]}}"#);
    mock.always(
        AZURE_MINI,
        MockReply::text("late").after(Duration::from_secs(3)),
    );

    let request = ChatRequest::new("mini", [Message::user("hello")]);
    let response = stack.oneshot(request).await.unwrap();

    assert_eq!(response.model(), AZURE_MINI);
    assert_eq!(mock.called_models(), [AZURE_MINI]);
}

#[test]
fn a_mistake_in_the_hedge_section_is_reported_with_its_path() {
    let config = Config::from_json_str(
        r#"{"routes": {"mini": ["azure/gpt-4o-mini", "openai/gpt-4o-mini"]},
            "fallback": {"hedge": {"delay": {"models": {"nowhere/x": "1s"}}, "budget": {"window": "2m"}}}}"#,
    )
    .unwrap();
    let mock = MockProvider::new();
    let e = Stack::builder()
        .config(config)
        .provider("azure", mock.clone())
        .provider("openai", mock)
        .build()
        .unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("fallback.hedge.delay.models.\"nowhere/x\""),
        "{text}"
    );
    assert!(text.contains("fallback.hedge.budget.window"), "{text}");
}

/// An ordered route whose first member is a weighted route: the balance
/// and the fallback layer share the hedge, each racing its own next
/// candidate. The caller gets one answer, and every other racer, at either
/// level, is dropped.
#[tokio::test(start_paused = true)]
async fn hedges_at_both_levels_of_a_group_over_a_weighted_route_give_one_answer() {
    let (stack, mock) = stack(
        r#"{
        "seed": 7,
        "routes": {
            "smart": {"weights": ["azure/gpt-4o", "openai/gpt-4o"]},
            "top": ["smart", "openai/gpt-4o-mini"]
        },
        "fallback": {
            "hedge": {"delay": "500ms", "budget": {"min_per_second": 0, "ratio": 1.0}}
        }
    }"#,
    );
    let silent = MockReply::text("late").after(Duration::from_secs(60));
    mock.always("azure/gpt-4o", silent.clone());
    mock.always("openai/gpt-4o", silent);
    mock.always(OPENAI_MINI, MockReply::text("fast").after(ms(100)));

    let started = Instant::now();
    let request = ChatRequest::new("top", [Message::user("hello")]);
    let response = stack.oneshot(request).await.unwrap();

    assert_eq!(response.model(), OPENAI_MINI);
    assert_eq!(response.text().as_deref(), Some("fast"));
    // Both levels hedge at 500 ms: the second deployment and the group's
    // next member race the first; the fastest answers 100 ms later.
    assert_eq!(started.elapsed(), ms(600));
    let mut dropped = mock.dropped();
    dropped.sort();
    assert_eq!(dropped, ["azure/gpt-4o", "openai/gpt-4o"]);
    let log: Vec<_> = response
        .attempts()
        .iter()
        .map(|a| (a.model.as_str(), a.error, a.hedge))
        .collect();
    // The seeded draw calls azure first; the log names the models called,
    // never the alias the fallback layer handed to the balance.
    assert_eq!(
        log,
        [
            ("azure/gpt-4o", Some(ErrorKind::Cancelled), false),
            ("openai/gpt-4o", Some(ErrorKind::Cancelled), true),
            (OPENAI_MINI, None, true),
        ]
    );
}
