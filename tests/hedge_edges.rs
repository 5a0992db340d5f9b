//! Hedged calls at their edges: the call's cap on upstream calls, failures
//! that do not fall back, and a caller that leaves mid-race.

use std::time::Duration;

use llm_fallback::chat::AttemptLog;
use llm_fallback::layers::hedge::{Hedge, HedgeBudget};
use llm_fallback::mock::{MockProvider, MockReply};
use llm_fallback::{
    ChatError, ChatRequest, ChatResponse, ErrorKind, Message, ProviderFallbackLayer, RouteOptions,
};
use tokio::time::Instant;
use tower::{Service, ServiceBuilder, ServiceExt};

const PRIMARY: &str = "azure/gpt-4o-mini";
const BACKUP: &str = "openai/gpt-4o-mini";

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn request() -> ChatRequest {
    ChatRequest::new(PRIMARY, [Message::user("hello")])
}

fn service(
    options: RouteOptions,
    mock: &MockProvider,
) -> impl Service<ChatRequest, Response = ChatResponse, Error = ChatError> + Clone {
    let budget = HedgeBudget::new(Duration::from_secs(10), 0, 1.0).unwrap();
    let layer = ProviderFallbackLayer::builder()
        .group([PRIMARY, BACKUP])
        .options(options.hedge(Hedge::new(ms(500)).budget(budget)))
        .build()
        .unwrap();
    ServiceBuilder::new().layer(layer).service(mock.clone())
}

#[tokio::test(start_paused = true)]
async fn a_hedge_is_an_upstream_call_within_the_calls_cap() {
    let mock = MockProvider::new();
    mock.always(
        PRIMARY,
        MockReply::text("late").after(Duration::from_secs(3)),
    );
    let svc = service(RouteOptions::new().max_upstream_calls(1), &mock);

    let response = svc.oneshot(request()).await.unwrap();

    assert_eq!(response.model(), PRIMARY);
    assert_eq!(mock.called_models(), [PRIMARY]);
}

#[tokio::test(start_paused = true)]
async fn a_hedge_failing_with_a_kind_that_does_not_fall_back_waits_for_the_first_candidate() {
    let mock = MockProvider::new();
    mock.always(
        PRIMARY,
        MockReply::text("fine").after(Duration::from_secs(1)),
    );
    mock.always(
        BACKUP,
        MockReply::error(ErrorKind::BadRequest).after(ms(100)),
    );
    let svc = service(RouteOptions::new(), &mock);

    let response = svc.oneshot(request()).await.unwrap();

    assert_eq!(response.model(), PRIMARY);
    let kinds: Vec<_> = response.attempts().iter().map(|a| a.error).collect();
    assert_eq!(kinds, [None, Some(ErrorKind::BadRequest)]);
}

#[tokio::test(start_paused = true)]
async fn a_failure_that_does_not_fall_back_ends_the_call_once_no_racer_is_left() {
    let mock = MockProvider::new();
    mock.always(
        PRIMARY,
        MockReply::error(ErrorKind::Server).after(Duration::from_secs(1)),
    );
    mock.always(
        BACKUP,
        MockReply::error(ErrorKind::BadRequest).after(ms(100)),
    );
    let svc = service(RouteOptions::new(), &mock);

    let started = Instant::now();
    let e = svc.oneshot(request()).await.unwrap_err();

    // The bad request is the reason, returned when the primary failed too.
    assert_eq!(e.kind(), ErrorKind::BadRequest);
    assert_eq!(started.elapsed(), Duration::from_secs(1));
    assert_eq!(mock.called_models(), [PRIMARY, BACKUP]);
}

#[tokio::test(start_paused = true)]
async fn a_caller_leaving_mid_race_drops_every_racer() {
    let mock = MockProvider::new();
    mock.always(
        PRIMARY,
        MockReply::text("late").after(Duration::from_secs(20)),
    );
    mock.always(
        BACKUP,
        MockReply::text("late").after(Duration::from_secs(20)),
    );
    let svc = service(RouteOptions::new(), &mock);

    let mut request = request();
    let log = AttemptLog::of(&mut request);
    let call = svc.oneshot(request);
    let timed_out = tokio::time::timeout(Duration::from_secs(1), call).await;

    assert!(timed_out.is_err());
    let mut dropped = mock.dropped();
    dropped.sort();
    assert_eq!(dropped, [PRIMARY, BACKUP]);
    // Both calls are in the log as cancelled, not left out.
    let entries: Vec<_> = log
        .snapshot()
        .into_iter()
        .map(|a| (a.model, a.error, a.hedge))
        .collect();
    let cancelled = Some(ErrorKind::Cancelled);
    assert_eq!(
        entries,
        [
            (PRIMARY.to_owned(), cancelled, false),
            (BACKUP.to_owned(), cancelled, true)
        ]
    );
}
