//! Timeout: per-model attempt deadlines, the total budget and how they meet.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use llm_fallback::chat::{PerModel, TimeoutKind};
use llm_fallback::mock::{MockProvider, MockReply};
use llm_fallback::{ChatError, ChatRequest, ChatResponse, ErrorKind, Message, TimeoutLayer};
use tokio::time::Instant;
use tower::{service_fn, ServiceBuilder, ServiceExt};

fn request(model: &str) -> ChatRequest {
    ChatRequest::new(model, [Message::user("hello")])
}

const SLOW: &str = "azure/gpt-4o";
const PATIENT: &str = "openai/o1";

#[tokio::test(start_paused = true)]
async fn attempt_timeout_fires_at_the_per_model_duration_and_names_the_deadline() {
    let mock = MockProvider::new();
    mock.always(SLOW, MockReply::text("late").after(Duration::from_secs(5)));
    mock.always(
        PATIENT,
        MockReply::text("thought").after(Duration::from_secs(5)),
    );
    let stack = ServiceBuilder::new()
        .layer(TimeoutLayer::per_model(
            PerModel::new(Some(Duration::from_secs(2)))
                .with(PATIENT, Some(Duration::from_secs(60))),
        ))
        .service(mock.clone());

    let start = Instant::now();
    let error = stack.clone().oneshot(request(SLOW)).await.unwrap_err();
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    assert_eq!(error.kind(), ErrorKind::Timeout);
    assert_eq!(error.timeout_kind(), Some(TimeoutKind::Attempt));
    assert_eq!(error.model(), Some(SLOW));
    assert!(error.to_string().contains("attempt deadline"), "{error}");
    assert_eq!(error.attempts().len(), 1);
    assert_eq!(error.attempts()[0].error, Some(ErrorKind::Timeout));
    assert_eq!(error.attempts()[0].latency, Duration::from_secs(2));

    let start = Instant::now();
    let response = stack.oneshot(request(PATIENT)).await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(5));
    assert_eq!(response.text().as_deref(), Some("thought"));
    assert_eq!(response.attempts().len(), 1);
    assert!(response.attempts()[0].is_success());
}

#[tokio::test(start_paused = true)]
async fn a_model_without_attempt_deadline_waits_for_its_answer() {
    let mock = MockProvider::new();
    mock.always(
        SLOW,
        MockReply::text("slow but fine").after(Duration::from_secs(300)),
    );
    let stack =
        TimeoutLayer::per_model(PerModel::new(Some(Duration::from_secs(1))).with(SLOW, None));
    let stack = ServiceBuilder::new().layer(stack).service(mock);

    let start = Instant::now();
    let response = stack.oneshot(request(SLOW)).await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(300));
    assert_eq!(response.text().as_deref(), Some("slow but fine"));
}

/// The deadlines a leaf saw, in call order.
type Seen = Arc<Mutex<Vec<Option<Instant>>>>;

/// A leaf that answers at once and remembers the deadline it saw.
fn deadline_spy(
    seen: &Seen,
) -> impl tower::Service<ChatRequest, Response = ChatResponse, Error = ChatError, Future = impl Send>
       + Clone {
    let spy = seen.clone();
    let mock = MockProvider::new();
    service_fn(move |request: ChatRequest| {
        spy.lock().unwrap().push(request.deadline());
        mock.clone().oneshot(request)
    })
}

#[tokio::test(start_paused = true)]
async fn total_timeout_stamps_a_deadline_that_inner_layers_see() {
    let seen = Seen::default();
    let spy = deadline_spy(&seen);
    let stack = ServiceBuilder::new()
        .layer(TimeoutLayer::total(Duration::from_secs(30)))
        .service(spy);

    let start = Instant::now();
    stack.clone().oneshot(request(SLOW)).await.unwrap();
    assert_eq!(
        seen.lock().unwrap()[0],
        Some(start + Duration::from_secs(30))
    );

    // An earlier deadline already on the request is kept: budgets only shrink.
    let mut early = request(SLOW);
    early.set_deadline(start + Duration::from_secs(5));
    stack.clone().oneshot(early).await.unwrap();
    assert_eq!(
        seen.lock().unwrap()[1],
        Some(start + Duration::from_secs(5))
    );
}

#[tokio::test(start_paused = true)]
async fn total_timeout_fails_at_its_budget_with_kind_total() {
    let mock = MockProvider::new();
    mock.always(SLOW, MockReply::text("late").after(Duration::from_secs(60)));
    let stack = ServiceBuilder::new()
        .layer(TimeoutLayer::total(Duration::from_secs(5)))
        .service(mock);

    let start = Instant::now();
    let error = stack.oneshot(request(SLOW)).await.unwrap_err();
    assert_eq!(start.elapsed(), Duration::from_secs(5));
    assert_eq!(error.timeout_kind(), Some(TimeoutKind::Total));
    assert_eq!(error.model(), Some(SLOW));
    assert_eq!(error.attempts().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn attempt_timeout_fires_at_the_earlier_total_deadline_and_reports_total() {
    let mock = MockProvider::new();
    mock.always(SLOW, MockReply::text("late").after(Duration::from_secs(60)));
    let stack = |total: u64, attempt: u64| {
        ServiceBuilder::new()
            .layer(TimeoutLayer::total(Duration::from_secs(total)))
            .layer(TimeoutLayer::attempt(Duration::from_secs(attempt)))
            .service(mock.clone())
    };

    let start = Instant::now();
    let error = stack(5, 10).oneshot(request(SLOW)).await.unwrap_err();
    assert_eq!(start.elapsed(), Duration::from_secs(5));
    assert_eq!(error.timeout_kind(), Some(TimeoutKind::Total));
    // The attempt layer saw the deadline fire and logged it; the total layer did not log it again.
    assert_eq!(error.attempts().len(), 1);

    let start = Instant::now();
    let error = stack(30, 3).oneshot(request(SLOW)).await.unwrap_err();
    assert_eq!(start.elapsed(), Duration::from_secs(3));
    assert_eq!(error.timeout_kind(), Some(TimeoutKind::Attempt));
}

#[tokio::test(start_paused = true)]
async fn total_deadline_is_never_exceeded_even_by_a_layer_that_keeps_retrying() {
    let mock = MockProvider::new();
    mock.always(SLOW, MockReply::text("late").after(Duration::from_secs(4)));
    let attempt = ServiceBuilder::new()
        .layer(TimeoutLayer::attempt(Duration::from_secs(3)))
        .service(mock.clone());
    // A naive retry loop that never looks at the deadline: the attempt
    // timeout under it must still stop at the total budget.
    let stubborn = service_fn(move |request: ChatRequest| {
        let attempt = attempt.clone();
        async move {
            loop {
                match attempt.clone().oneshot(request.clone()).await {
                    Err(e) if e.timeout_kind() == Some(TimeoutKind::Attempt) => continue,
                    other => return other,
                }
            }
        }
    });
    let stack = ServiceBuilder::new()
        .layer(TimeoutLayer::total(Duration::from_secs(10)))
        .service(stubborn);

    let start = Instant::now();
    let error = stack.oneshot(request(SLOW)).await.unwrap_err();
    assert_eq!(start.elapsed(), Duration::from_secs(10));
    assert_eq!(error.timeout_kind(), Some(TimeoutKind::Total));
    // Attempts at 0 s, 3 s, 6 s and 9 s; the last one is cut at 10 s.
    assert_eq!(mock.call_count(SLOW), 4);
    assert_eq!(error.attempts().len(), 4);
    assert_eq!(error.attempts()[3].latency, Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn a_deadline_that_has_passed_fails_without_an_upstream_call() {
    let mock = MockProvider::new();
    let stack = ServiceBuilder::new()
        .layer(TimeoutLayer::attempt(Duration::from_secs(10)))
        .service(mock.clone());
    let mut late = request(SLOW);
    late.set_deadline(Instant::now());
    tokio::time::advance(Duration::from_millis(1)).await;

    let error = stack.oneshot(late).await.unwrap_err();
    assert_eq!(error.timeout_kind(), Some(TimeoutKind::Total));
    assert_eq!(mock.call_count(SLOW), 0);
    assert!(error.attempts().is_empty());
}

#[tokio::test(start_paused = true)]
async fn an_upstream_error_before_the_deadline_passes_through_logged_once() {
    let mock = MockProvider::new();
    mock.script(
        SLOW,
        [MockReply::error(ErrorKind::Server).after(Duration::from_secs(1))],
    );
    let stack = ServiceBuilder::new()
        .layer(TimeoutLayer::total(Duration::from_secs(30)))
        .layer(TimeoutLayer::attempt(Duration::from_secs(10)))
        .service(mock);

    let error = stack.oneshot(request(SLOW)).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Server);
    assert_eq!(error.attempts().len(), 1);
    assert_eq!(error.attempts()[0].latency, Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn an_unrepresentably_large_budget_means_no_deadline() {
    let seen = Seen::default();
    let spy = deadline_spy(&seen);
    let stack = ServiceBuilder::new()
        .layer(TimeoutLayer::total(Duration::MAX))
        .layer(TimeoutLayer::attempt(Duration::MAX))
        .service(spy);
    stack.oneshot(request(SLOW)).await.unwrap();
    assert_eq!(seen.lock().unwrap()[0], None);
}
