//! SelectModel: the routing function's choice, and the default on error, bad choice or timeout.

use std::time::Duration;

use llm_fallback::mock::MockProvider;
use llm_fallback::{ChatRequest, Message, SelectModelLayer};
use tokio::time::Instant;
use tower::{service_fn, Layer, ServiceExt};

const MINI: &str = "openai/gpt-4o-mini";
const SONNET: &str = "anthropic/claude-3-5-sonnet-20240620";
const CANDIDATES: [&str; 2] = [MINI, SONNET];

fn request(text: &str) -> ChatRequest {
    ChatRequest::new("auto", [Message::user(text)])
}

#[tokio::test(start_paused = true)]
async fn the_functions_choice_is_the_model_called() {
    let mock = MockProvider::new();
    let select = SelectModelLayer::from_fn(|req: &ChatRequest| {
        let hard = req.messages()[0].text().contains("prove");
        async move { Ok::<_, String>(if hard { SONNET } else { MINI }.to_owned()) }
    })
    .candidates(CANDIDATES)
    .build()
    .unwrap();
    let service = select.layer(mock.clone());

    let hard = service.clone().oneshot(request("prove it")).await.unwrap();
    let easy = service.oneshot(request("hi")).await.unwrap();

    assert_eq!(hard.model(), SONNET);
    assert_eq!(easy.model(), MINI);
    assert_eq!(mock.called_models(), [SONNET, MINI]);
}

#[tokio::test(start_paused = true)]
async fn on_an_error_the_default_model_is_used() {
    let mock = MockProvider::new();
    let failing = |_: &ChatRequest| async { Err::<String, _>("router is down") };

    let first = SelectModelLayer::from_fn(failing)
        .candidates([SONNET, MINI])
        .build()
        .unwrap();
    let response = first
        .layer(mock.clone())
        .oneshot(request("hi"))
        .await
        .unwrap();
    assert_eq!(response.model(), SONNET, "default: the first candidate");

    let explicit = SelectModelLayer::from_fn(failing)
        .candidates(CANDIDATES)
        .default_model("groq/llama-3.1-8b")
        .build()
        .unwrap();
    let response = explicit
        .layer(mock.clone())
        .oneshot(request("hi"))
        .await
        .unwrap();
    assert_eq!(response.model(), "groq/llama-3.1-8b");
}

#[tokio::test(start_paused = true)]
async fn a_choice_outside_the_candidates_uses_the_default() {
    let mock = MockProvider::new();
    let select = SelectModelLayer::from_fn(|_: &ChatRequest| async {
        Ok::<_, String>("openai/o1-pro".to_owned())
    })
    .candidates(CANDIDATES)
    .build()
    .unwrap();

    let response = select
        .layer(mock.clone())
        .oneshot(request("hi"))
        .await
        .unwrap();

    assert_eq!(response.model(), MINI);
    assert_eq!(mock.call_count("openai/o1-pro"), 0);
}

#[tokio::test(start_paused = true)]
async fn a_slow_function_is_abandoned_after_5_seconds_for_the_default() {
    let mock = MockProvider::new();
    let select = SelectModelLayer::from_fn(|_: &ChatRequest| async {
        tokio::time::sleep(Duration::from_secs(60)).await;
        Ok::<_, String>(SONNET.to_owned())
    })
    .candidates(CANDIDATES)
    .build()
    .unwrap();
    let start = Instant::now();

    let response = select
        .layer(mock.clone())
        .oneshot(request("hi"))
        .await
        .unwrap();

    assert_eq!(response.model(), MINI);
    assert_eq!(start.elapsed(), Duration::from_secs(5));
    assert_eq!(mock.calls()[0].at - start, Duration::from_secs(5));
}

#[tokio::test(start_paused = true)]
async fn the_budget_is_configurable_and_bounded_by_the_requests_deadline() {
    let mock = MockProvider::new();
    let slow = |_: &ChatRequest| async {
        tokio::time::sleep(Duration::from_secs(60)).await;
        Ok::<_, String>(SONNET.to_owned())
    };
    let select = SelectModelLayer::from_fn(slow)
        .candidates(CANDIDATES)
        .timeout(Duration::from_millis(800))
        .build()
        .unwrap();
    let start = Instant::now();
    select
        .layer(mock.clone())
        .oneshot(request("hi"))
        .await
        .unwrap();
    assert_eq!(start.elapsed(), Duration::from_millis(800));

    let select = SelectModelLayer::from_fn(slow)
        .candidates(CANDIDATES)
        .build()
        .unwrap();
    let mut req = request("hi");
    req.set_deadline(Instant::now() + Duration::from_secs(2));
    let start = Instant::now();
    let response = select.layer(mock.clone()).oneshot(req).await.unwrap();
    assert_eq!(response.model(), MINI);
    assert_eq!(start.elapsed(), Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn a_service_can_be_the_routing_function() {
    let mock = MockProvider::new();
    let router = service_fn(|req: ChatRequest| async move {
        let long = req.messages().iter().map(|m| m.text().len()).sum::<usize>() > 10;
        Ok::<_, std::io::Error>(if long { SONNET } else { MINI }.to_owned())
    });
    let select = SelectModelLayer::from_service(router)
        .candidates(CANDIDATES)
        .build()
        .unwrap();

    let response = select
        .layer(mock.clone())
        .oneshot(request("a long question"))
        .await
        .unwrap();

    assert_eq!(response.model(), SONNET);
}

#[test]
fn a_layer_without_a_default_or_with_a_zero_timeout_is_rejected() {
    let choose = |_: &ChatRequest| async { Ok::<_, String>(MINI.to_owned()) };
    let e = SelectModelLayer::from_fn(choose).build().unwrap_err();
    assert_eq!(e.problems()[0].path, "select.default_model");

    let e = SelectModelLayer::from_fn(choose)
        .candidates(CANDIDATES)
        .timeout(Duration::ZERO)
        .build()
        .unwrap_err();
    assert_eq!(e.problems()[0].path, "select.timeout");

    let e = SelectModelLayer::from_fn(choose)
        .candidates(["gpt 4o"])
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("\"gpt 4o\""), "{e}");
}
