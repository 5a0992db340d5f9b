//! Hedged calls: a candidate that has not answered within the hedge delay
//! races the next candidate of its route; the first to answer serves.

use std::time::Duration;

use futures_util::StreamExt;
use llm_fallback::layers::cooldown::AdaptiveThrottle;
use llm_fallback::layers::health::{AllCooling, Health, HealthView};
use llm_fallback::layers::hedge::{Hedge, HedgeBudget};
use llm_fallback::mock::{MockProvider, MockReply};
use llm_fallback::{
    ChatError, ChatRequest, ChatResponse, CooldownLayer, ErrorKind, FallbackBuilder, Message,
    ProviderFallbackLayer, RouteOptions, SharedRng, WeightedBalanceLayer,
};
use tokio::time::Instant;
use tower::{Service, ServiceBuilder, ServiceExt};

const PRIMARY: &str = "azure/gpt-4o-mini";
const BACKUP: &str = "openai/gpt-4o-mini";
const THIRD: &str = "anthropic/claude-3-5-haiku-latest";

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn request(model: &str) -> ChatRequest {
    ChatRequest::new(model, [Message::user("hello")])
}

/// A budget that pays for a hedge on every call.
fn every_call() -> HedgeBudget {
    HedgeBudget::new(Duration::from_secs(10), 0, 1.0).unwrap()
}

fn hedged(delay: Duration) -> FallbackBuilder {
    ProviderFallbackLayer::builder()
        .group([PRIMARY, BACKUP, THIRD])
        .options(RouteOptions::new().hedge(Hedge::new(delay).budget(every_call())))
}

fn service(
    builder: FallbackBuilder,
    mock: &MockProvider,
) -> impl Service<ChatRequest, Response = ChatResponse, Error = ChatError> + Clone {
    ServiceBuilder::new()
        .layer(builder.build().unwrap())
        .service(mock.clone())
}

fn called_at(mock: &MockProvider, model: &str) -> Vec<Instant> {
    mock.calls()
        .iter()
        .filter(|c| c.model == model)
        .map(|c| c.at)
        .collect()
}

#[tokio::test(start_paused = true)]
async fn the_hedge_starts_exactly_at_the_delay_and_the_faster_racer_serves() {
    let mock = MockProvider::new();
    mock.always(
        PRIMARY,
        MockReply::text("late").after(Duration::from_secs(20)),
    );
    mock.always(BACKUP, MockReply::text("quick").after(ms(100)));
    let svc = service(hedged(ms(500)), &mock);

    let start = Instant::now();
    let response = svc.oneshot(request(PRIMARY)).await.unwrap();

    assert_eq!(response.model(), BACKUP);
    assert_eq!(response.text().as_deref(), Some("quick"));
    assert_eq!(called_at(&mock, BACKUP), [start + ms(500)]);
    assert_eq!(start.elapsed(), ms(600));
    // The third candidate was never needed.
    assert_eq!(mock.called_models(), [PRIMARY, BACKUP]);
}

#[tokio::test(start_paused = true)]
async fn the_loser_is_dropped_at_once_and_logged_as_cancelled_not_failed() {
    let mock = MockProvider::new();
    mock.always(
        PRIMARY,
        MockReply::text("late").after(Duration::from_secs(20)),
    );
    let svc = service(hedged(ms(500)), &mock);

    let response = svc.oneshot(request(PRIMARY)).await.unwrap();

    assert_eq!(mock.dropped(), [PRIMARY]);
    let attempts = response.attempts();
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    assert_eq!(attempts[0].model, PRIMARY);
    assert_eq!(attempts[0].error, Some(ErrorKind::Cancelled));
    assert!(!attempts[0].hedge);
    assert_eq!(attempts[1].model, BACKUP);
    assert!(attempts[1].is_success());
    assert!(attempts[1].hedge);
}

#[tokio::test(start_paused = true)]
async fn the_first_candidate_answering_after_the_hedge_started_cancels_the_hedge() {
    let mock = MockProvider::new();
    mock.always(PRIMARY, MockReply::text("first").after(ms(700)));
    mock.always(
        BACKUP,
        MockReply::text("second").after(Duration::from_secs(2)),
    );
    let svc = service(hedged(ms(500)), &mock);

    let start = Instant::now();
    let response = svc.oneshot(request(PRIMARY)).await.unwrap();

    assert_eq!(response.model(), PRIMARY);
    assert_eq!(start.elapsed(), ms(700));
    assert_eq!(mock.dropped(), [BACKUP]);
    let attempts = response.attempts();
    assert!(attempts[0].is_success() && !attempts[0].hedge);
    assert_eq!(attempts[1].error, Some(ErrorKind::Cancelled));
    assert!(attempts[1].hedge);
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_loser_counts_toward_no_breaker_or_throttle() {
    let mock = MockProvider::new();
    mock.always(
        PRIMARY,
        MockReply::text("late").after(Duration::from_secs(20)),
    );
    // Trips at the first counting failure; sheds from the second call on if
    // cancelled calls counted as unanswered.
    let cooldown = CooldownLayer::builder()
        .consecutive_failures(1)
        .adaptive_throttle(AdaptiveThrottle::new(1.0, Duration::from_secs(60)).with_min_requests(1))
        .build()
        .unwrap();
    let fallback = hedged(ms(500)).health(cooldown.health());
    let svc = ServiceBuilder::new()
        .layer(fallback.build().unwrap())
        .layer(cooldown.clone())
        .service(mock.clone());

    for _ in 0..12 {
        let response = svc.clone().oneshot(request(PRIMARY)).await.unwrap();
        assert_eq!(response.model(), BACKUP);
    }

    assert_eq!(
        mock.call_count(PRIMARY),
        12,
        "every call still tried the primary"
    );
    assert_eq!(mock.dropped().len(), 12);
    assert!(cooldown.health().cooling_until(PRIMARY).is_none());
}

#[tokio::test(start_paused = true)]
async fn a_hedge_failing_before_it_answers_lets_the_first_candidate_go_on() {
    let mock = MockProvider::new();
    mock.always(
        PRIMARY,
        MockReply::text("slow but fine").after(Duration::from_secs(1)),
    );
    mock.always(BACKUP, MockReply::error(ErrorKind::Server).after(ms(100)));
    mock.always(
        THIRD,
        MockReply::text("third").after(Duration::from_secs(5)),
    );
    let svc = service(hedged(ms(500)), &mock);

    let start = Instant::now();
    let response = svc.oneshot(request(PRIMARY)).await.unwrap();

    assert_eq!(response.model(), PRIMARY);
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    // The failed hedge did not start the third candidate at once: its own
    // delay (from 500 ms) had not passed when the primary answered.
    assert_eq!(mock.called_models(), [PRIMARY, BACKUP]);
    let attempts = response.attempts();
    assert_eq!(attempts[0].model, PRIMARY);
    assert!(attempts[0].is_success());
    assert_eq!(attempts[1].model, BACKUP);
    assert_eq!(attempts[1].error, Some(ErrorKind::Server));
    assert!(attempts[1].hedge);
}

#[tokio::test(start_paused = true)]
async fn the_first_candidate_failing_while_a_hedge_runs_lets_the_hedge_serve() {
    let mock = MockProvider::new();
    mock.always(PRIMARY, MockReply::error(ErrorKind::Server).after(ms(700)));
    mock.always(BACKUP, MockReply::text("backup").after(ms(400)));
    let svc = service(hedged(ms(500)), &mock);

    let start = Instant::now();
    let response = svc.oneshot(request(PRIMARY)).await.unwrap();

    assert_eq!(response.model(), BACKUP);
    assert_eq!(start.elapsed(), ms(900));
    assert_eq!(mock.called_models(), [PRIMARY, BACKUP]);
    assert!(mock.dropped().is_empty());
    let kinds: Vec<_> = response.attempts().iter().map(|a| a.error).collect();
    assert_eq!(kinds, [Some(ErrorKind::Server), None]);
}

#[tokio::test(start_paused = true)]
async fn every_racer_failing_ends_the_call_with_every_attempt() {
    let mock = MockProvider::new();
    for model in [PRIMARY, BACKUP, THIRD] {
        mock.always(model, MockReply::error(ErrorKind::Server).after(ms(800)));
    }
    let svc = service(hedged(ms(500)), &mock);

    let e = svc.oneshot(request(PRIMARY)).await.unwrap_err();

    assert_eq!(e.kind(), ErrorKind::Server);
    let models: Vec<_> = e.attempts().iter().map(|a| a.model.as_str()).collect();
    assert_eq!(models, [PRIMARY, BACKUP, THIRD]);
    assert!(e
        .attempts()
        .iter()
        .all(|a| a.error == Some(ErrorKind::Server)));
}

#[tokio::test(start_paused = true)]
async fn the_budget_stops_hedging_when_it_is_spent() {
    let mock = MockProvider::new();
    mock.always(
        PRIMARY,
        MockReply::text("late").after(Duration::from_secs(2)),
    );
    // One hedge per two calls, no floor.
    let budget = HedgeBudget::new(Duration::from_secs(10), 0, 0.5).unwrap();
    let fallback = ProviderFallbackLayer::builder()
        .group([PRIMARY, BACKUP])
        .options(RouteOptions::new().hedge(Hedge::new(ms(500)).budget(budget)));
    let svc = service(fallback, &mock);

    let mut served = Vec::new();
    for _ in 0..4 {
        let response = svc.clone().oneshot(request(PRIMARY)).await.unwrap();
        served.push(response.model().to_owned());
    }

    assert_eq!(served, [PRIMARY, BACKUP, PRIMARY, BACKUP]);
    assert_eq!(mock.call_count(BACKUP), 2);
}

#[tokio::test(start_paused = true)]
async fn no_hedge_when_the_route_has_no_other_candidate() {
    let mock = MockProvider::new();
    mock.always(
        PRIMARY,
        MockReply::text("late").after(Duration::from_secs(3)),
    );
    let fallback = ProviderFallbackLayer::builder()
        .route("solo", [PRIMARY])
        .options(RouteOptions::new().hedge(Hedge::new(ms(500)).budget(every_call())));
    let svc = service(fallback, &mock);

    let start = Instant::now();
    let response = svc.oneshot(request("solo")).await.unwrap();

    assert_eq!(response.model(), PRIMARY);
    assert_eq!(start.elapsed(), Duration::from_secs(3));
    assert_eq!(mock.called_models(), [PRIMARY]);
}

/// Says `BACKUP` cools down for an hour.
#[derive(Debug)]
struct BackupCooling(Instant);

impl HealthView for BackupCooling {
    fn cooling_until(&self, model: &str) -> Option<Instant> {
        (model == BACKUP).then_some(self.0)
    }
}

#[tokio::test(start_paused = true)]
async fn no_hedge_to_a_cooling_candidate_not_even_the_last_resort() {
    let mock = MockProvider::new();
    mock.always(
        PRIMARY,
        MockReply::text("late").after(Duration::from_secs(3)),
    );
    let health = Health::new(BackupCooling(Instant::now() + Duration::from_secs(3600)))
        .with_all_cooling(AllCooling::TryEarliest);
    let fallback = ProviderFallbackLayer::builder()
        .group([PRIMARY, BACKUP])
        .health(health)
        .options(RouteOptions::new().hedge(Hedge::new(ms(500)).budget(every_call())));
    let svc = service(fallback, &mock);

    let response = svc.oneshot(request(PRIMARY)).await.unwrap();

    assert_eq!(response.model(), PRIMARY);
    assert_eq!(mock.called_models(), [PRIMARY]);
}

#[tokio::test(start_paused = true)]
async fn a_stream_whose_head_is_early_but_first_token_late_is_hedged() {
    let mock = MockProvider::new();
    // The head comes at 10 ms, long before the delay; the first token at 5 s.
    mock.always(
        PRIMARY,
        MockReply::text("slow answer")
            .after(ms(10))
            .first_token_after(Duration::from_secs(5)),
    );
    mock.always(BACKUP, MockReply::text("fast answer").after(ms(200)));
    let svc = service(hedged(Duration::from_secs(1)), &mock);

    let start = Instant::now();
    let response = svc
        .oneshot(request(PRIMARY).with_stream(true))
        .await
        .unwrap();

    assert_eq!(response.model(), BACKUP);
    assert_eq!(start.elapsed(), ms(1200));
    assert_eq!(mock.dropped(), [PRIMARY]);
    let mut stream = response.into_stream().unwrap();
    let mut text = String::new();
    while let Some(chunk) = stream.next().await {
        text.push_str(&chunk.unwrap().text());
    }
    assert_eq!(text, "fast answer");
}

#[tokio::test(start_paused = true)]
async fn a_stream_whose_first_token_comes_in_time_is_not_hedged() {
    let mock = MockProvider::new();
    mock.always(
        PRIMARY,
        MockReply::text("in time")
            .after(ms(10))
            .first_token_after(ms(300)),
    );
    let svc = service(hedged(Duration::from_secs(1)), &mock);

    let response = svc
        .oneshot(request(PRIMARY).with_stream(true))
        .await
        .unwrap();

    assert_eq!(response.model(), PRIMARY);
    assert_eq!(mock.called_models(), [PRIMARY]);
    assert_eq!(response.attempts().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn the_balance_layer_hedges_over_its_route_too() {
    let mock = MockProvider::new();
    mock.always(
        PRIMARY,
        MockReply::text("late").after(Duration::from_secs(20)),
    );
    mock.always(
        BACKUP,
        MockReply::text("late").after(Duration::from_secs(20)),
    );
    let balance = WeightedBalanceLayer::builder()
        .route("smart", [(PRIMARY, 1.0), (BACKUP, 1.0)])
        .rng(SharedRng::seeded(7))
        .options(RouteOptions::new().hedge(Hedge::new(ms(500)).budget(every_call())))
        .build()
        .unwrap();
    let svc = ServiceBuilder::new().layer(balance).service(mock.clone());

    let start = Instant::now();
    let e = svc.oneshot(request("smart")).await;

    // Both are slow: the second starts at 500 ms, the first answers at 20 s.
    assert!(e.is_ok());
    assert_eq!(start.elapsed(), Duration::from_secs(20));
    assert_eq!(mock.calls().len(), 2);
    assert_eq!(mock.dropped().len(), 1);
}
