//! The admission knobs of a config: the all-cooling policy, the adaptive
//! throttle and the per-call cap reach the stack, and bad values are
//! refused with their paths.

use llm_fallback::mock::{MockProvider, MockReply};
use llm_fallback::{ChatError, ChatRequest, ChatResponse, Config, ErrorKind, Message, Stack};
use tower::{ServiceBuilder, ServiceExt};

const AZURE_MINI: &str = "azure/gpt-4o-mini";
const OPENAI_MINI: &str = "openai/gpt-4o-mini";
const ROUTE: &str = r#""routes": {"mini": ["azure/gpt-4o-mini", "openai/gpt-4o-mini"]}"#;

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

async fn ask(stack: &Stack, model: &str) -> Result<ChatResponse, ChatError> {
    stack
        .clone()
        .oneshot(ChatRequest::new(model, [Message::user("hello")]))
        .await
}

#[tokio::test(start_paused = true)]
async fn fail_fast_from_the_config_holds_for_the_route_and_the_direct_model() {
    let (stack, mock) = stack(&format!(
        r#"{{ {ROUTE}, "retry": {{"max_retries": 0}},
             "cooldown": {{"when_all_cooling": "fail_fast", "cooldown": "10s"}} }}"#
    ));
    mock.script(AZURE_MINI, [MockReply::error(ErrorKind::NotFound)]);
    mock.script(OPENAI_MINI, [MockReply::error(ErrorKind::NotFound)]);
    let _ = ask(&stack, "mini").await;
    mock.clear_calls();

    let routed = ask(&stack, "mini").await.unwrap_err();
    let direct = ask(&stack, AZURE_MINI).await.unwrap_err();
    assert!(mock.called_models().is_empty());
    for e in [routed, direct] {
        assert_eq!(e.kind(), ErrorKind::CoolingDown, "{e}");
        assert!(e.retry_after().is_some(), "{e}");
    }
}

#[tokio::test(start_paused = true)]
async fn the_default_tries_the_earliest_once_for_the_route_and_the_direct_model() {
    let (stack, mock) = stack(&format!(
        r#"{{ {ROUTE}, "retry": {{"max_retries": 2, "budget": false}},
             "cooldown": {{"cooldown": "10s"}} }}"#
    ));
    mock.script(AZURE_MINI, [MockReply::error(ErrorKind::NotFound)]);
    mock.script(OPENAI_MINI, [MockReply::error(ErrorKind::NotFound)]);
    let _ = ask(&stack, "mini").await;
    mock.clear_calls();
    mock.always(AZURE_MINI, MockReply::error(ErrorKind::Server));
    mock.always(OPENAI_MINI, MockReply::error(ErrorKind::Server));

    let _ = ask(&stack, "mini").await.unwrap_err();
    assert_eq!(
        mock.called_models().len(),
        1,
        "one forced call, not retried"
    );
    mock.clear_calls();
    let _ = ask(&stack, OPENAI_MINI).await.unwrap_err();
    assert_eq!(mock.called_models(), [OPENAI_MINI]);
}

#[tokio::test(start_paused = true)]
async fn the_cap_and_the_throttle_come_from_the_config() {
    let (stack, mock) = stack(&format!(
        r#"{{ {ROUTE}, "retry": {{"max_retries": 2, "budget": false}},
             "fallback": {{"max_upstream_calls": 2}},
             "cooldown": {{"adaptive_throttle": false, "consecutive_failures": 0, "failure_ratio": false}} }}"#
    ));
    mock.always(AZURE_MINI, MockReply::error(ErrorKind::Server));
    mock.always(OPENAI_MINI, MockReply::error(ErrorKind::Server));

    let _ = ask(&stack, "mini").await.unwrap_err();
    assert_eq!(mock.called_models(), [AZURE_MINI, AZURE_MINI]);
    // Without a throttle, a model that always fails is still called every
    // time (with its two retries: a model requested directly has no route
    // to insert the cap).
    mock.clear_calls();
    for _ in 0..30 {
        let _ = ask(&stack, OPENAI_MINI).await;
    }
    assert_eq!(mock.call_count(OPENAI_MINI), 90);
}

#[test]
fn bad_admission_settings_are_refused_with_their_paths() {
    let config = Config::from_json_str(
        r#"{ "cooldown": {"when_all_cooling": "sometimes", "adaptive_throttle": {"k": 0.5, "window": "1ms"}},
             "fallback": {"max_upstream_calls": 0} }"#,
    )
    .unwrap();
    let e = config.validate().unwrap_err();
    let paths: Vec<&str> = e.problems().iter().map(|p| p.path.as_str()).collect();
    for path in [
        "cooldown.when_all_cooling",
        "cooldown.adaptive_throttle.k",
        "cooldown.adaptive_throttle.window",
        "fallback.max_upstream_calls",
    ] {
        assert!(paths.contains(&path), "no problem at {path}: {e}");
    }
}
