//! ProviderFallback: group order, dedicated routes per kind, bounds, cooling, the all-failed error.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use llm_fallback::chat::{Attempt, AttemptLog};
use llm_fallback::layers::fallback::{FallbackConfig, FallbackGroups};
use llm_fallback::layers::health::{ForceAttempt, Health, HealthView};
use llm_fallback::mock::{MockProvider, MockReply};
use llm_fallback::{
    ChatError, ChatRequest, ChatResponse, ErrorKind, Message, ProviderFallbackLayer, RouteOptions,
};
use tokio::time::Instant;
use tower::{service_fn, Layer, Service, ServiceExt};

const AZURE: &str = "azure/gpt-4o-mini";
const OPENAI: &str = "openai/gpt-4o-mini";
const GROQ: &str = "groq/llama-3.1-8b";
const BIG: &str = "openai/gpt-4.1";
const BIGGER: &str = "google/gemini-1.5-pro";

fn request(model: &str) -> ChatRequest {
    ChatRequest::new(model, [Message::user("hello")])
}

async fn send<S>(
    layer: &ProviderFallbackLayer,
    inner: S,
    model: &str,
) -> Result<ChatResponse, ChatError>
where
    S: Service<ChatRequest, Response = ChatResponse, Error = ChatError> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    layer.layer(inner).oneshot(request(model)).await
}

fn failing(mock: &MockProvider, model: &str, kind: ErrorKind) {
    mock.always(model, MockReply::error(kind));
}

/// A health view the test sets by hand.
#[derive(Clone, Default)]
struct FakeHealth(Arc<Mutex<HashMap<String, Instant>>>);

impl FakeHealth {
    fn cool(&self, model: &str, for_: Duration) {
        self.0
            .lock()
            .unwrap()
            .insert(model.into(), Instant::now() + for_);
    }
}

impl HealthView for FakeHealth {
    fn cooling_until(&self, model: &str) -> Option<Instant> {
        self.0.lock().unwrap().get(model).copied()
    }
}

/// Each call's model, and whether it was forced.
type Seen = Arc<Mutex<Vec<(String, bool)>>>;

/// The mock, behind a spy noting each call it receives.
fn spy(
    mock: MockProvider,
) -> (
    impl Service<ChatRequest, Response = ChatResponse, Error = ChatError, Future: Send>
        + Clone
        + Send
        + 'static,
    Seen,
) {
    let seen = Seen::default();
    let log = seen.clone();
    let svc = service_fn(move |req: ChatRequest| {
        let forced = req.extensions().get::<ForceAttempt>().is_some();
        log.lock().unwrap().push((req.model().to_owned(), forced));
        mock.clone().oneshot(req)
    });
    (svc, seen)
}

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
async fn the_requested_model_goes_first_then_the_rest_of_its_group_in_order() {
    let mock = MockProvider::new();
    failing(&mock, OPENAI, ErrorKind::Server);
    failing(&mock, AZURE, ErrorKind::Server);
    let layer = ProviderFallbackLayer::builder()
        .group([AZURE, OPENAI, GROQ])
        .build()
        .unwrap();

    let response = send(&layer, mock.clone(), OPENAI).await.unwrap();

    assert_eq!(mock.called_models(), [OPENAI, AZURE, GROQ]);
    assert_eq!(response.model(), GROQ);
    let tried: Vec<_> = response
        .attempts()
        .iter()
        .map(|a| a.model.as_str())
        .collect();
    assert_eq!(tried, [OPENAI, AZURE, GROQ]);
    assert!(response.attempts()[2].is_success());
}

#[tokio::test(start_paused = true)]
async fn a_model_in_several_groups_tries_every_member_once() {
    let mock = MockProvider::new();
    for m in [AZURE, OPENAI, GROQ] {
        failing(&mock, m, ErrorKind::Server);
    }
    let layer = ProviderFallbackLayer::builder()
        .group([AZURE, OPENAI, AZURE])
        .group([GROQ, OPENAI, AZURE, BIG])
        .build()
        .unwrap();

    let response = send(&layer, mock.clone(), AZURE).await.unwrap();

    assert_eq!(mock.called_models(), [AZURE, OPENAI, GROQ, BIG]);
    assert_eq!(response.model(), BIG);
}

#[tokio::test(start_paused = true)]
async fn a_model_in_no_group_is_called_alone_and_its_error_returned_as_is() {
    let mock = MockProvider::new();
    failing(&mock, BIG, ErrorKind::Server);
    let layer = ProviderFallbackLayer::builder()
        .group([AZURE, OPENAI])
        .build()
        .unwrap();

    let e = send(&layer, mock.clone(), BIG).await.unwrap_err();

    assert_eq!(mock.called_models(), [BIG]);
    assert_eq!(e.kind(), ErrorKind::Server);
    assert_eq!(e.candidates_failed(), 0);
    assert!(e.to_string().starts_with("openai/gpt-4.1: 500"), "{e}");
}

#[tokio::test(start_paused = true)]
async fn a_named_group_is_an_alias_for_its_list() {
    let mock = MockProvider::new();
    failing(&mock, GROQ, ErrorKind::RateLimited);
    let layer = ProviderFallbackLayer::builder()
        .named_group("fast", [GROQ, OPENAI])
        .build()
        .unwrap();

    let response = send(&layer, mock.clone(), "fast").await.unwrap();
    assert_eq!(mock.called_models(), [GROQ, OPENAI]);
    assert_eq!(response.model(), OPENAI);

    // Its members fall back within it too.
    mock.clear_calls();
    failing(&mock, OPENAI, ErrorKind::Server);
    mock.always(GROQ, MockReply::text("fine"));
    let response = send(&layer, mock.clone(), OPENAI).await.unwrap();
    assert_eq!(mock.called_models(), [OPENAI, GROQ]);
    assert_eq!(response.model(), GROQ);
}

#[tokio::test(start_paused = true)]
async fn a_route_is_one_way_its_members_do_not_fall_back_to_each_other() {
    let mock = MockProvider::new();
    failing(&mock, GROQ, ErrorKind::RateLimited);
    failing(&mock, OPENAI, ErrorKind::Server);
    let layer = ProviderFallbackLayer::builder()
        .route("fast", [GROQ, OPENAI, BIG])
        .build()
        .unwrap();

    let response = send(&layer, mock.clone(), "fast").await.unwrap();
    assert_eq!(mock.called_models(), [GROQ, OPENAI, BIG]);
    assert_eq!(response.model(), BIG);

    // A request for a member is that member's alone.
    mock.clear_calls();
    let e = send(&layer, mock.clone(), OPENAI).await.unwrap_err();
    assert_eq!(mock.called_models(), [OPENAI]);
    assert_eq!(e.kind(), ErrorKind::Server);
}

#[tokio::test(start_paused = true)]
async fn a_model_in_no_group_still_takes_the_context_window_route() {
    let mock = MockProvider::new();
    failing(&mock, GROQ, ErrorKind::ContextWindowExceeded);
    failing(&mock, OPENAI, ErrorKind::Server);
    let layer = ProviderFallbackLayer::builder()
        .on_context_window_exceeded([BIG])
        .build()
        .unwrap();

    let response = send(&layer, mock.clone(), GROQ).await.unwrap();
    assert_eq!(mock.called_models(), [GROQ, BIG]);
    assert_eq!(response.model(), BIG);

    // Other failures of a lone model come back as they are.
    mock.clear_calls();
    let e = send(&layer, mock.clone(), OPENAI).await.unwrap_err();
    assert_eq!(mock.called_models(), [OPENAI]);
    assert_eq!(e.kind(), ErrorKind::Server);
    assert!(e.to_string().starts_with("openai/gpt-4o-mini: 500"), "{e}");
}

#[tokio::test(start_paused = true)]
async fn kinds_that_do_not_fall_back_stop_at_the_first_candidate() {
    for kind in [
        ErrorKind::BadRequest,
        ErrorKind::ContentFilter,
        ErrorKind::ContextWindowExceeded,
        ErrorKind::Cancelled,
    ] {
        let mock = MockProvider::new();
        failing(&mock, AZURE, kind);
        let layer = ProviderFallbackLayer::builder()
            .group([AZURE, OPENAI])
            .build()
            .unwrap();

        let e = send(&layer, mock.clone(), AZURE).await.unwrap_err();

        assert_eq!(mock.called_models(), [AZURE], "{kind}");
        assert_eq!(e.kind(), kind);
        assert_eq!(
            e.message(),
            format!("mock {kind}"),
            "the provider's reason reaches the caller"
        );
        assert_eq!(e.attempts().len(), 1);
    }
}

#[tokio::test(start_paused = true)]
async fn which_kinds_fall_back_can_be_overridden_per_kind() {
    let mock = MockProvider::new();
    failing(&mock, AZURE, ErrorKind::BadRequest);
    let layer = ProviderFallbackLayer::builder()
        .group([AZURE, OPENAI])
        .options(RouteOptions::new().fallback_on(ErrorKind::BadRequest, true))
        .build()
        .unwrap();
    let response = send(&layer, mock.clone(), AZURE).await.unwrap();
    assert_eq!(response.model(), OPENAI);

    let mock = MockProvider::new();
    failing(&mock, AZURE, ErrorKind::Server);
    let layer = ProviderFallbackLayer::builder()
        .group([AZURE, OPENAI])
        .options(RouteOptions::new().fallback_on(ErrorKind::Server, false))
        .build()
        .unwrap();
    let e = send(&layer, mock.clone(), AZURE).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Server);
    assert_eq!(mock.called_models(), [AZURE]);
}

#[tokio::test(start_paused = true)]
async fn context_window_exceeded_goes_to_the_larger_context_list_not_the_group() {
    let mock = MockProvider::new();
    failing(&mock, AZURE, ErrorKind::ContextWindowExceeded);
    failing(&mock, BIG, ErrorKind::ContextWindowExceeded);
    let layer = ProviderFallbackLayer::builder()
        .group([AZURE, OPENAI])
        .on_context_window_exceeded([BIG, BIGGER])
        .build()
        .unwrap();

    let response = send(&layer, mock.clone(), AZURE).await.unwrap();

    // openai/gpt-4o-mini has the same window: it is not tried.
    assert_eq!(mock.called_models(), [AZURE, BIG, BIGGER]);
    assert_eq!(response.model(), BIGGER);
}

#[tokio::test(start_paused = true)]
async fn a_per_model_context_window_route_takes_precedence_over_the_global_one() {
    let mock = MockProvider::new();
    failing(&mock, AZURE, ErrorKind::ContextWindowExceeded);
    let layer = ProviderFallbackLayer::builder()
        .group([AZURE, OPENAI])
        .on_context_window_exceeded([BIG])
        .on_context_window_exceeded_for(AZURE, [BIGGER])
        .build()
        .unwrap();

    let response = send(&layer, mock.clone(), AZURE).await.unwrap();

    assert_eq!(mock.called_models(), [AZURE, BIGGER]);
    assert_eq!(response.model(), BIGGER);
}

#[tokio::test(start_paused = true)]
async fn a_content_filter_failure_goes_only_where_configured() {
    let mock = MockProvider::new();
    failing(&mock, AZURE, ErrorKind::ContentFilter);
    let layer = ProviderFallbackLayer::builder()
        .group([AZURE, OPENAI])
        .on_content_filter(["anthropic/claude-3-5-sonnet-20240620"])
        .build()
        .unwrap();

    let response = send(&layer, mock.clone(), AZURE).await.unwrap();

    assert_eq!(
        mock.called_models(),
        [AZURE, "anthropic/claude-3-5-sonnet-20240620"]
    );
    assert_eq!(response.model(), "anthropic/claude-3-5-sonnet-20240620");
}

#[tokio::test(start_paused = true)]
async fn max_fallbacks_bounds_the_candidates_called() {
    let mock = MockProvider::new();
    for m in [AZURE, OPENAI, GROQ] {
        failing(&mock, m, ErrorKind::Server);
    }
    let layer = ProviderFallbackLayer::builder()
        .group([AZURE, OPENAI, GROQ, BIG])
        .options(RouteOptions::new().max_fallbacks(1))
        .build()
        .unwrap();

    let e = send(&layer, mock.clone(), AZURE).await.unwrap_err();

    assert_eq!(mock.called_models(), [AZURE, OPENAI]);
    assert_eq!(e.candidates_failed(), 2);
}

#[tokio::test(start_paused = true)]
async fn cooling_candidates_are_skipped_without_a_call_and_not_counted() {
    let mock = MockProvider::new();
    failing(&mock, OPENAI, ErrorKind::Server);
    let health = FakeHealth::default();
    health.cool(AZURE, Duration::from_secs(10));
    let layer = ProviderFallbackLayer::builder()
        .group([AZURE, OPENAI, GROQ])
        .options(RouteOptions::new().max_fallbacks(1))
        .build()
        .unwrap()
        .with_health(Health::new(health));

    let response = send(&layer, mock.clone(), AZURE).await.unwrap();

    assert_eq!(mock.called_models(), [OPENAI, GROQ]);
    assert_eq!(response.model(), GROQ);
    let attempts = response.attempts();
    assert_eq!(attempts.len(), 3);
    assert_eq!(attempts[0].model, AZURE);
    assert_eq!(attempts[0].error, Some(ErrorKind::CoolingDown));
    assert!(!attempts[0].upstream);
    assert!(attempts[1].upstream && attempts[2].upstream);
}

#[tokio::test(start_paused = true)]
async fn when_every_candidate_cools_the_earliest_ending_one_is_called_with_force_attempt() {
    let mock = MockProvider::new();
    let health = FakeHealth::default();
    health.cool(AZURE, Duration::from_secs(30));
    health.cool(OPENAI, Duration::from_secs(5));
    health.cool(GROQ, Duration::from_secs(20));
    let layer = ProviderFallbackLayer::builder()
        .group([AZURE, OPENAI, GROQ])
        .health(Health::new(health))
        .build()
        .unwrap();
    let (inner, seen) = spy(mock.clone());

    let response = send(&layer, inner, AZURE).await.unwrap();

    assert_eq!(*seen.lock().unwrap(), [(OPENAI.to_owned(), true)]);
    assert_eq!(response.model(), OPENAI);
    let skips = response.attempts().iter().filter(|a| !a.upstream).count();
    assert_eq!(skips, 3);
}

#[tokio::test(start_paused = true)]
async fn a_cooling_down_refusal_from_below_moves_on_without_counting() {
    // No health view: the Cooldown layer below refuses instead.
    let mock = MockProvider::new();
    mock.always(AZURE, MockReply::error(ErrorKind::CoolingDown));
    let layer = ProviderFallbackLayer::builder()
        .group([AZURE, OPENAI])
        .options(RouteOptions::new().max_fallbacks(0))
        .build()
        .unwrap();

    let response = send(&layer, mock.clone(), AZURE).await.unwrap();

    assert_eq!(mock.called_models(), [AZURE, OPENAI]);
    assert_eq!(response.model(), OPENAI);
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

#[test]
fn model_fallback_groups_are_parsed_with_names_and_spaces() {
    let groups = FallbackGroups::parse(
        " azure/gpt-4o-mini , openai/gpt-4o-mini ;\nfast = groq/llama-3.1-8b,openai/gpt-4o-mini;; ",
    )
    .unwrap();
    assert_eq!(
        groups,
        FallbackGroups::new()
            .group([AZURE, OPENAI])
            .named("fast", [GROQ, OPENAI])
    );
    assert!(FallbackGroups::parse("").unwrap().is_empty());
}

#[test]
fn model_fallback_groups_errors_name_the_group_and_the_bad_part() {
    let cases = [
        (
            "azure/gpt-4o-mini,,openai/gpt-4o-mini",
            "group 1",
            "empty model id",
        ),
        (
            "azure/a,openai/b;fast=x=azure/a",
            "group 2 \"fast=x=azure/a\"",
            "more than one '='",
        ),
        ("=azure/a,openai/b", "group 1", "group name is empty"),
        ("azure/a,gpt-4o", "group 1", "\"gpt-4o\" is not of the form"),
        (
            "azure/a,openai/b;openai/c",
            "group 2 \"openai/c\"",
            "at least two distinct models",
        ),
        ("f=azure/a;f=openai/b", "group 2", "\"f\" is used twice"),
        ("my fast=azure/a", "group 1", "contains ' '"),
        (
            "azure/a=openai/b,azure/a",
            "group 1",
            "also a model of a group",
        ),
    ];
    for (spec, group, part) in cases {
        let e = FallbackGroups::parse(spec).unwrap_err();
        let problem = &e.problems()[0];
        assert_eq!(problem.path, "MODEL_FALLBACK_GROUPS", "{spec}");
        assert!(problem.message.contains(group), "{spec}: {e}");
        assert!(problem.message.contains(part), "{spec}: {e}");
    }
}

#[tokio::test(start_paused = true)]
async fn groups_come_from_the_environment_variable() {
    // The only test in this binary that touches the variable.
    std::env::set_var(
        "MODEL_FALLBACK_GROUPS",
        "azure/gpt-4o-mini,openai/gpt-4o-mini",
    );
    let layer = ProviderFallbackLayer::from_env().unwrap();
    std::env::set_var("MODEL_FALLBACK_GROUPS", "azure/gpt-4o-mini,,");
    let e = ProviderFallbackLayer::from_env().unwrap_err();
    std::env::remove_var("MODEL_FALLBACK_GROUPS");

    assert!(
        e.to_string().starts_with("MODEL_FALLBACK_GROUPS: group 1"),
        "{e}"
    );
    let mock = MockProvider::new();
    failing(&mock, AZURE, ErrorKind::Server);
    let response = send(&layer, mock.clone(), AZURE).await.unwrap();
    assert_eq!(response.model(), OPENAI);
}

#[test]
fn malformed_ids_in_code_and_config_are_rejected_at_build_with_their_path() {
    let e = ProviderFallbackLayer::builder()
        .group([AZURE, "gpt-4o"])
        .named_group("fast", Vec::<String>::new())
        .on_context_window_exceeded(["big model"])
        .build()
        .unwrap_err();
    let paths: Vec<_> = e.problems().iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        ["groups[0]", "named_groups.fast", "context_window_fallbacks"]
    );
    assert!(e.to_string().contains("\"gpt-4o\""), "{e}");
    assert!(e.to_string().contains("\"big model\""), "{e}");

    let config: FallbackConfig = serde_json::from_value(serde_json::json!({
        "groups": [[AZURE, OPENAI]],
        "fallback_on": {"bogus": true},
        "content_filter_fallbacks": {"models": {"azure": [OPENAI]}}
    }))
    .unwrap();
    let e = ProviderFallbackLayer::from_config(&config).unwrap_err();
    let paths: Vec<_> = e.problems().iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "fallback_on.bogus",
            "content_filter_fallbacks_per_model.azure"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_config_value_builds_the_same_behaviour() {
    let config: FallbackConfig = serde_json::from_value(serde_json::json!({
        "groups": format!("{AZURE},{OPENAI}; fast={GROQ},{OPENAI}"),
        "context_window_fallbacks": [BIG],
        "fallback_on": {"bad_request": true},
        "max_fallbacks": 2
    }))
    .unwrap();
    let layer = ProviderFallbackLayer::from_config(&config).unwrap();
    let mock = MockProvider::new();
    failing(&mock, AZURE, ErrorKind::ContextWindowExceeded);
    failing(&mock, GROQ, ErrorKind::BadRequest);

    assert_eq!(
        send(&layer, mock.clone(), AZURE).await.unwrap().model(),
        BIG
    );
    assert_eq!(
        send(&layer, mock.clone(), "fast").await.unwrap().model(),
        OPENAI
    );
}
