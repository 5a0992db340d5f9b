//! The stack built from a config: layer order and what it means for the
//! caller (retries per model before the fallback, one cooldown verdict per
//! model call, prepended messages per attempted model, deadlines).

use std::time::Duration;

use llm_fallback::chat::{Role, TimeoutKind};
use llm_fallback::mock::{MockProvider, MockReply};
use llm_fallback::{
    ChatError, ChatRequest, ChatResponse, Config, ErrorKind, Message, SelectModelLayer, Stack,
};
use tokio::time::Instant;
use tower::{ServiceBuilder, ServiceExt};

const AZURE_MINI: &str = "azure/gpt-4o-mini";
const OPENAI_MINI: &str = "openai/gpt-4o-mini";

/// A stack whose `azure` and `openai` providers are one scripted mock that
/// sees full model ids, so its call log is in order across providers.
fn stack(json: &str) -> (Stack, MockProvider) {
    stack_with(json, |b| b)
}

fn stack_with(
    json: &str,
    extra: impl FnOnce(llm_fallback::stack::StackBuilder) -> llm_fallback::stack::StackBuilder,
) -> (Stack, MockProvider) {
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
    let builder = Stack::builder()
        .config(config)
        .provider("azure", prefixed("azure"))
        .provider("openai", prefixed("openai"));
    (extra(builder).build().unwrap(), mock)
}

async fn ask(stack: &Stack, model: &str) -> Result<ChatResponse, ChatError> {
    stack
        .clone()
        .oneshot(ChatRequest::new(model, [Message::user("hello")]))
        .await
}

const MINI_ROUTE: &str = r#""routes": {"mini": ["azure/gpt-4o-mini", "openai/gpt-4o-mini"]}"#;

#[tokio::test(start_paused = true)]
async fn each_model_is_retried_on_its_own_terms_before_the_next_is_called() {
    let (stack, mock) = stack(&format!(
        r#"{{ {MINI_ROUTE}, "retry": {{"max_retries": {{"default": 1, "models": {{"azure/gpt-4o-mini": 2}}}},
             "backoff": {{"base": "100ms", "jitter": "none"}}, "budget": false}} }}"#
    ));
    mock.always(AZURE_MINI, MockReply::error(ErrorKind::Server));

    let started = Instant::now();
    let response = ask(&stack, "mini").await.unwrap();

    assert_eq!(response.model(), OPENAI_MINI);
    assert_eq!(
        mock.called_models(),
        [AZURE_MINI, AZURE_MINI, AZURE_MINI, OPENAI_MINI]
    );
    // Backoff 100 ms then 200 ms between Azure's tries; none before the fallback.
    assert_eq!(started.elapsed(), Duration::from_millis(300));
    let attempts = response.attempts();
    assert_eq!(attempts.len(), 4);
    assert_eq!(attempts[3].error, None);
}

#[tokio::test(start_paused = true)]
async fn a_settings_key_naming_a_route_applies_to_each_of_its_models() {
    let (stack, mock) = stack(&format!(
        r#"{{ {MINI_ROUTE}, "retry": {{"max_retries": {{"default": 2, "models": {{"mini": 0}}}}}} }}"#
    ));
    mock.always(AZURE_MINI, MockReply::error(ErrorKind::Server));

    ask(&stack, "mini").await.unwrap();
    assert_eq!(mock.called_models(), [AZURE_MINI, OPENAI_MINI]);
}

#[tokio::test(start_paused = true)]
async fn the_breaker_counts_a_model_call_with_its_retries_as_one_failure_and_then_skips_it() {
    let (stack, mock) = stack(&format!(
        r#"{{ {MINI_ROUTE}, "retry": {{"max_retries": 2, "backoff": {{"base": "10ms"}}, "budget": false}},
             "cooldown": {{"consecutive_failures": 2, "cooldown": "30s", "failure_ratio": false}} }}"#
    ));
    mock.always(AZURE_MINI, MockReply::error(ErrorKind::Server));

    // Two calls of Azure (3 tries each) trip its breaker: retries sit inside it.
    ask(&stack, "mini").await.unwrap();
    assert!(stack.health().is_available(AZURE_MINI));
    ask(&stack, "mini").await.unwrap();
    assert!(!stack.health().is_available(AZURE_MINI));
    assert_eq!(mock.call_count(AZURE_MINI), 6);

    // Now the fallback layer skips it without a call.
    mock.clear_calls();
    let response = ask(&stack, "mini").await.unwrap();
    assert_eq!(mock.called_models(), [OPENAI_MINI]);
    let skipped = &response.attempts()[0];
    assert_eq!(skipped.model, AZURE_MINI);
    assert_eq!(skipped.error, Some(ErrorKind::CoolingDown));
    assert!(!skipped.upstream);
}

#[tokio::test(start_paused = true)]
async fn each_attempt_gets_the_messages_of_the_model_it_calls_once() {
    let (stack, mock) = stack(&format!(
        r#"{{ {MINI_ROUTE}, "retry": {{"max_retries": {{"models": {{"azure/gpt-4o-mini": 1, "openai/gpt-4o-mini": 0}}}}}},
             "model_messages": {{"default": [{{"role": "system", "content": "default"}}],
                                 "models": {{"azure/gpt-4o-mini": [{{"role": "developer", "content": "azure"}}]}}}} }}"#
    ));
    mock.always(AZURE_MINI, MockReply::error(ErrorKind::RateLimited));

    ask(&stack, "mini").await.unwrap();

    let calls = mock.calls();
    let seen: Vec<(String, Vec<String>)> = calls
        .iter()
        .map(|c| {
            (
                c.model.clone(),
                c.messages.iter().map(Message::text).collect(),
            )
        })
        .collect();
    let azure = vec!["azure".to_owned(), "hello".to_owned()];
    let openai = vec!["default".to_owned(), "hello".to_owned()];
    assert_eq!(
        seen,
        [
            (AZURE_MINI.to_owned(), azure.clone()),
            (AZURE_MINI.to_owned(), azure),
            (OPENAI_MINI.to_owned(), openai)
        ]
    );
    assert_eq!(calls[2].messages[0].role, Role::System);
}

#[tokio::test(start_paused = true)]
async fn the_total_deadline_bounds_every_retry_and_fallback() {
    let (stack, mock) = stack(&format!(
        r#"{{ {MINI_ROUTE}, "timeout": {{"total": "1s"}}, "retry": {{"max_retries": 5, "budget": false}} }}"#
    ));
    let slow_failure = MockReply::error(ErrorKind::Server).after(Duration::from_millis(400));
    mock.always(AZURE_MINI, slow_failure.clone());
    mock.always(OPENAI_MINI, slow_failure);

    let started = Instant::now();
    let e = ask(&stack, "mini").await.unwrap_err();

    assert_eq!(e.kind(), ErrorKind::Timeout);
    assert_eq!(e.timeout_kind(), Some(TimeoutKind::Total));
    assert_eq!(started.elapsed(), Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn a_slow_model_times_out_on_its_own_deadline_and_the_next_serves() {
    let (stack, mock) = stack(&format!(
        r#"{{ {MINI_ROUTE}, "timeout": {{"attempt": {{"default": "none", "models": {{"azure/gpt-4o-mini": "2s"}}}}}} }}"#
    ));
    mock.always(
        AZURE_MINI,
        MockReply::text("late").after(Duration::from_secs(60)),
    );
    mock.always(
        OPENAI_MINI,
        MockReply::text("on time").after(Duration::from_secs(5)),
    );

    let started = Instant::now();
    let response = ask(&stack, "mini").await.unwrap();

    assert_eq!(response.model(), OPENAI_MINI);
    assert_eq!(started.elapsed(), Duration::from_secs(7));
    assert_eq!(response.attempts()[0].error, Some(ErrorKind::Timeout));
}

#[tokio::test(start_paused = true)]
async fn a_weighted_route_draws_its_candidates_then_takes_its_fallbacks() {
    let (stack, mock) = stack(
        r#"{ "routes": {"mini": ["azure/gpt-4o-mini", "openai/gpt-4o-mini"],
             "big": {"weights": {"azure/gpt-4o": 1, "openai/gpt-4o": 1}, "fallbacks": ["mini"]}} }"#,
    );
    mock.always("azure/gpt-4o", MockReply::error(ErrorKind::Auth));
    mock.always("openai/gpt-4o", MockReply::error(ErrorKind::NotFound));

    let response = ask(&stack, "big").await.unwrap();

    assert_eq!(response.model(), AZURE_MINI);
    let mut first_two = mock.called_models()[..2].to_vec();
    first_two.sort();
    assert_eq!(first_two, ["azure/gpt-4o", "openai/gpt-4o"]);
    assert_eq!(mock.called_models().len(), 3);
    assert_eq!(
        stack.routes()["big"],
        ["azure/gpt-4o", "openai/gpt-4o", AZURE_MINI, OPENAI_MINI]
    );
}

#[tokio::test(start_paused = true)]
async fn a_weighted_route_is_one_way_too() {
    let (stack, mock) = stack(
        r#"{ "routes": {"big": {"weights": {"azure/gpt-4o": 1, "openai/gpt-4o": 1}},
                        "azure-first": ["azure/gpt-4o", "azure/gpt-4o-mini"]},
             "retry": {"max_retries": 0} }"#,
    );
    mock.always("azure/gpt-4o", MockReply::error(ErrorKind::Server));

    // By id, a weighted route's model is that model alone ...
    let e = ask(&stack, "azure/gpt-4o").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Server);
    assert_eq!(mock.called_models(), ["azure/gpt-4o"]);

    // ... and in another route, its next model is that route's, not a draw.
    mock.clear_calls();
    let response = ask(&stack, "azure-first").await.unwrap();
    assert_eq!(mock.called_models(), ["azure/gpt-4o", AZURE_MINI]);
    assert_eq!(response.model(), AZURE_MINI);
}

#[tokio::test(start_paused = true)]
async fn seeded_draws_are_the_same_run_after_run() {
    let json = r#"{ "seed": 42, "routes": {"big": {"weights": {"azure/gpt-4o": 1, "openai/gpt-4o": 1}}} }"#;
    let mut runs = Vec::new();
    for _ in 0..2 {
        let (stack, _) = stack(json);
        let mut served = Vec::new();
        for _ in 0..40 {
            served.push(ask(&stack, "big").await.unwrap().model().to_owned());
        }
        runs.push(served);
    }
    assert_eq!(runs[0], runs[1]);
    assert!(runs[0].iter().any(|m| m == "azure/gpt-4o"));
    assert!(runs[0].iter().any(|m| m == "openai/gpt-4o"));
}

#[tokio::test(start_paused = true)]
async fn a_prompt_too_long_for_a_weighted_route_goes_to_its_context_window_route() {
    let (stack, mock) = stack(
        r#"{ "routes": {"big": {"weights": {"azure/gpt-4o": 1}}},
             "fallback": {"context_window_fallbacks": {"models": {"big": ["openai/gpt-4.1"]}}} }"#,
    );
    mock.always(
        "azure/gpt-4o",
        MockReply::error(ErrorKind::ContextWindowExceeded),
    );

    let response = ask(&stack, "big").await.unwrap();

    assert_eq!(response.model(), "openai/gpt-4.1");
    assert_eq!(mock.called_models(), ["azure/gpt-4o", "openai/gpt-4.1"]);
}

#[tokio::test(start_paused = true)]
async fn a_route_is_one_way_but_groups_from_the_environment_are_two_way() {
    let (stack, mock) = stack_with(
        &format!(
            r#"{{ {MINI_ROUTE}, "fallback": {{"groups_from_env": true}}, "retry": {{"max_retries": 0}} }}"#
        ),
        |b| {
            b.env(|var| {
                (var == "MODEL_FALLBACK_GROUPS").then(|| "openai/gpt-4o, azure/gpt-4o".to_owned())
            })
        },
    );
    mock.always(OPENAI_MINI, MockReply::error(ErrorKind::Server));
    mock.always("openai/gpt-4o", MockReply::error(ErrorKind::Server));

    // The route's second model, requested directly, has nowhere to go.
    let e = ask(&stack, OPENAI_MINI).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Server);
    assert_eq!(mock.called_models(), [OPENAI_MINI]);

    mock.clear_calls();
    let response = ask(&stack, "openai/gpt-4o").await.unwrap();
    assert_eq!(response.model(), "azure/gpt-4o");
    assert_eq!(mock.called_models(), ["openai/gpt-4o", "azure/gpt-4o"]);
}

#[tokio::test(start_paused = true)]
async fn a_routing_function_on_top_picks_the_route() {
    let select = SelectModelLayer::from_fn(|_: &ChatRequest| async {
        Ok::<_, std::convert::Infallible>("mini".to_owned())
    })
    // The default (the first candidate) is not the function's choice, so
    // which one was called tells them apart.
    .candidates([OPENAI_MINI, "mini"])
    .build()
    .unwrap();
    let (stack, mock) = stack_with(&format!("{{ {MINI_ROUTE} }}"), |b| b.select_model(select));
    mock.always(AZURE_MINI, MockReply::error(ErrorKind::Auth));

    let response = ask(&stack, "anything").await.unwrap();
    assert_eq!(response.model(), OPENAI_MINI);
    assert_eq!(
        mock.called_models(),
        [AZURE_MINI, OPENAI_MINI],
        "the route \"mini\", from its first model"
    );
}
