//! Cooldown: per-model circuit breaking, half-open probes, health for the routing layers.

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use llm_fallback::chat::{PerModel, TimeoutKind};
use llm_fallback::layers::cooldown::{
    default_verdict, Admission, BreakerSettings, CooldownBuilder, FailureRatio, Permit, Transition,
    Verdict,
};
use llm_fallback::layers::cooldown::{CooldownStore, InMemoryStore};
use llm_fallback::layers::health::{AllCooling, ForceAttempt, HealthView};
use llm_fallback::mock::{MockProvider, MockReply};
use llm_fallback::store::StoreFuture;
use llm_fallback::{
    ChatError, ChatRequest, ChatResponse, CooldownLayer, ErrorKind, Message, TimeoutLayer,
};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tower::{Service, ServiceBuilder, ServiceExt};

const AZURE: &str = "azure/gpt-4o";
const OPENAI: &str = "openai/gpt-4o";

fn request(model: &str) -> ChatRequest {
    ChatRequest::new(model, [Message::user("hello")])
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// A cooldown stack over `mock`, and the layer (for its health). Calls here
/// name the model directly, which by default gets one forced call when it
/// cools (`AllCooling::TryEarliest`); these tests watch the breaker itself,
/// so they fail fast.
fn stack(
    builder: CooldownBuilder,
    mock: &MockProvider,
) -> (
    CooldownLayer,
    impl Service<ChatRequest, Response = ChatResponse, Error = ChatError, Future: Send> + Clone + Send,
) {
    let layer = builder
        .when_all_cooling(AllCooling::FailFast)
        .build()
        .unwrap();
    let service = ServiceBuilder::new()
        .layer(layer.clone())
        .service(mock.clone());
    (layer, service)
}

async fn call<S>(service: &S, model: &str) -> Result<ChatResponse, ChatError>
where
    S: Service<ChatRequest, Response = ChatResponse, Error = ChatError> + Clone,
{
    service.clone().oneshot(request(model)).await
}

#[tokio::test(start_paused = true)]
async fn trips_after_n_consecutive_failures_then_fails_fast_without_an_upstream_call() {
    let mock = MockProvider::new();
    mock.always(AZURE, MockReply::error(ErrorKind::Server));
    let builder = CooldownLayer::builder()
        .consecutive_failures(3)
        .cooldown(secs(10))
        .without_failure_ratio();
    let (_, service) = stack(builder, &mock);

    for _ in 0..2 {
        assert_eq!(
            call(&service, AZURE).await.unwrap_err().kind(),
            ErrorKind::Server
        );
    }
    assert_eq!(
        call(&service, AZURE).await.unwrap_err().kind(),
        ErrorKind::Server
    );
    let tripped = Instant::now();

    tokio::time::advance(secs(4)).await;
    let error = call(&service, AZURE).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::CoolingDown);
    assert_eq!(error.model(), Some(AZURE));
    assert_eq!(error.cooling_until(), Some(tripped + secs(10)));
    assert_eq!(mock.call_count(AZURE), 3);
    // The refusal is in the log, marked as never sent upstream.
    assert_eq!(error.attempts().len(), 1);
    assert_eq!(error.attempts()[0].error, Some(ErrorKind::CoolingDown));
    assert!(!error.attempts()[0].upstream);

    // Other models are not affected.
    assert!(call(&service, OPENAI).await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn a_success_resets_the_consecutive_count() {
    let mock = MockProvider::new();
    let fail = || MockReply::error(ErrorKind::Server);
    mock.script(
        AZURE,
        [fail(), fail(), MockReply::text("ok"), fail(), fail()],
    );
    let builder = CooldownLayer::builder()
        .consecutive_failures(3)
        .without_failure_ratio();
    let (_, service) = stack(builder, &mock);

    for _ in 0..5 {
        let _ = call(&service, AZURE).await;
    }
    assert!(call(&service, AZURE).await.is_ok());
    assert_eq!(mock.call_count(AZURE), 6);
}

#[tokio::test(start_paused = true)]
async fn failure_ratio_trips_only_once_the_minimum_number_of_calls_is_reached() {
    let mock = MockProvider::new();
    let fail = || MockReply::error(ErrorKind::Server);
    let ok = || MockReply::text("ok");
    // 5 failures out of 9 calls is over half, but 9 calls are too few.
    mock.script(
        AZURE,
        [
            fail(),
            ok(),
            fail(),
            ok(),
            fail(),
            ok(),
            fail(),
            ok(),
            fail(),
        ],
    );
    mock.script(AZURE, [fail()]);
    let builder = CooldownLayer::builder()
        .consecutive_failures(0)
        .failure_ratio(0.5, secs(10), 10);
    let (_, service) = stack(builder, &mock);

    for _ in 0..9 {
        let _ = call(&service, AZURE).await;
    }
    assert_eq!(mock.call_count(AZURE), 9);
    // The tenth call (6 of 10 failed) trips it.
    assert_eq!(
        call(&service, AZURE).await.unwrap_err().kind(),
        ErrorKind::Server
    );
    assert_eq!(
        call(&service, AZURE).await.unwrap_err().kind(),
        ErrorKind::CoolingDown
    );
    assert_eq!(mock.call_count(AZURE), 10);
}

#[tokio::test(start_paused = true)]
async fn failures_older_than_the_ratio_window_are_forgotten() {
    let mock = MockProvider::new();
    mock.always(AZURE, MockReply::error(ErrorKind::Server));
    // The breaker's window alone: the throttle's (30 s) would shed calls here.
    let builder = CooldownLayer::builder()
        .without_adaptive_throttle()
        .consecutive_failures(0)
        .failure_ratio(0.5, secs(10), 10);
    let (_, service) = stack(builder, &mock);

    for _ in 0..9 {
        let _ = call(&service, AZURE).await;
    }
    tokio::time::advance(secs(11)).await;
    // Only one failure is left in the window: far from ten calls.
    let _ = call(&service, AZURE).await;
    assert_eq!(
        call(&service, AZURE).await.unwrap_err().kind(),
        ErrorKind::Server
    );
    assert_eq!(mock.call_count(AZURE), 11);
}

#[tokio::test(start_paused = true)]
async fn a_rate_limit_with_retry_after_opens_the_breaker_for_exactly_that_long() {
    let mock = MockProvider::new();
    mock.script(
        AZURE,
        [MockReply::error(ErrorKind::RateLimited).with_retry_after(secs(7))],
    );
    let (layer, service) = stack(CooldownLayer::builder(), &mock);
    let health = layer.health();

    let start = Instant::now();
    assert_eq!(
        call(&service, AZURE).await.unwrap_err().kind(),
        ErrorKind::RateLimited
    );
    assert_eq!(health.cooling_until(AZURE), Some(start + secs(7)));

    tokio::time::advance(secs(7) - Duration::from_millis(1)).await;
    let error = call(&service, AZURE).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::CoolingDown);
    assert_eq!(error.cooling_until(), Some(start + secs(7)));
    assert_eq!(mock.call_count(AZURE), 1);

    tokio::time::advance(Duration::from_millis(1)).await;
    assert!(call(&service, AZURE).await.is_ok());
    assert_eq!(mock.call_count(AZURE), 2);
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_capped_by_the_configured_maximum() {
    let mock = MockProvider::new();
    mock.script(
        AZURE,
        [MockReply::error(ErrorKind::RateLimited).with_retry_after(secs(3600))],
    );
    let (layer, service) = stack(CooldownLayer::builder().max_retry_after(secs(60)), &mock);

    let start = Instant::now();
    let _ = call(&service, AZURE).await;
    assert_eq!(layer.health().cooling_until(AZURE), Some(start + secs(60)));
}

#[tokio::test(start_paused = true)]
async fn a_single_401_or_429_without_retry_after_counts_but_does_not_open_the_breaker() {
    let mock = MockProvider::new();
    mock.script(
        AZURE,
        [
            MockReply::error(ErrorKind::Auth),
            MockReply::error(ErrorKind::RateLimited),
        ],
    );
    let builder = CooldownLayer::builder()
        .consecutive_failures(3)
        .cooldown(secs(5));
    let (layer, service) = stack(builder, &mock);

    let error = call(&service, AZURE).await.unwrap_err();
    assert_eq!(error.status(), Some(StatusCode::UNAUTHORIZED));
    assert!(layer.health().is_available(AZURE), "one 401 is no trend");
    let error = call(&service, AZURE).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::RateLimited);
    assert!(layer.health().is_available(AZURE), "nor is one 429");
    // They counted: a third failure in a row opens it.
    mock.script(AZURE, [MockReply::error(ErrorKind::Auth)]);
    let _ = call(&service, AZURE).await;
    let opened = Instant::now();
    let error = call(&service, AZURE).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::CoolingDown);
    assert_eq!(error.cooling_until(), Some(opened + secs(5)));
    assert_eq!(mock.call_count(AZURE), 3);
}

#[tokio::test(start_paused = true)]
async fn an_unknown_model_opens_the_breaker_at_once_for_the_cooldown() {
    let mock = MockProvider::new();
    mock.script(AZURE, [MockReply::error(ErrorKind::NotFound)]);
    let (_, service) = stack(CooldownLayer::builder().cooldown(secs(5)), &mock);

    let start = Instant::now();
    let error = call(&service, AZURE).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound);
    let error = call(&service, AZURE).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::CoolingDown);
    assert_eq!(error.cooling_until(), Some(start + secs(5)));
    assert_eq!(mock.call_count(AZURE), 1);
}

/// Opens `AZURE`'s breaker with one 404 (an unknown model trips at once)
/// and waits out the cooldown.
async fn open_then_wait(
    service: &(impl Service<ChatRequest, Response = ChatResponse, Error = ChatError> + Clone),
    mock: &MockProvider,
    cooldown: Duration,
) {
    mock.script(AZURE, [MockReply::error(ErrorKind::NotFound)]);
    assert_eq!(
        call(service, AZURE).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    tokio::time::advance(cooldown).await;
}

#[tokio::test(start_paused = true)]
async fn half_open_admits_exactly_one_probe_among_ten_concurrent_calls_and_closes_on_success() {
    let mock = MockProvider::new();
    let (layer, service) = stack(CooldownLayer::builder().cooldown(secs(5)), &mock);
    open_then_wait(&service, &mock, secs(5)).await;
    mock.script(AZURE, [MockReply::text("recovered").after(secs(1))]);

    let mut calls = JoinSet::new();
    for _ in 0..10 {
        let service = service.clone();
        calls.spawn(async move { service.oneshot(request(AZURE)).await });
    }
    let (mut served, mut refused) = (0, 0);
    while let Some(result) = calls.join_next().await {
        match result.unwrap() {
            Ok(response) => {
                assert_eq!(response.text().as_deref(), Some("recovered"));
                served += 1;
            }
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::CoolingDown);
                assert!(e.cooling_until().unwrap() >= Instant::now());
                refused += 1;
            }
        }
    }
    assert_eq!((served, refused), (1, 9));
    assert_eq!(mock.call_count(AZURE), 2);

    // The probe's success closed the breaker: calls flow again.
    assert!(layer.health().is_available(AZURE));
    for _ in 0..3 {
        assert!(call(&service, AZURE).await.is_ok());
    }
    assert_eq!(mock.call_count(AZURE), 5);
}

#[tokio::test(start_paused = true)]
async fn a_failed_probe_reopens_the_breaker_for_the_same_cooldown() {
    let mock = MockProvider::new();
    let (layer, service) = stack(CooldownLayer::builder().cooldown(secs(5)), &mock);
    open_then_wait(&service, &mock, secs(5)).await;

    mock.script(AZURE, [MockReply::error(ErrorKind::Server)]);
    assert_eq!(
        call(&service, AZURE).await.unwrap_err().kind(),
        ErrorKind::Server
    );
    let reopened = Instant::now();
    assert_eq!(
        layer.health().cooling_until(AZURE),
        Some(reopened + secs(5))
    );
    assert_eq!(
        call(&service, AZURE).await.unwrap_err().kind(),
        ErrorKind::CoolingDown
    );
    assert_eq!(mock.call_count(AZURE), 2);
}

#[tokio::test(start_paused = true)]
async fn failed_probes_grow_the_cooldown_up_to_its_cap_and_a_success_resets_it() {
    let mock = MockProvider::new();
    let builder = CooldownLayer::builder()
        .cooldown(secs(5))
        .growing_by(2.0, secs(15));
    let (layer, service) = stack(builder, &mock);
    open_then_wait(&service, &mock, secs(5)).await;

    let mut cooldowns = Vec::new();
    for _ in 0..3 {
        mock.script(AZURE, [MockReply::error(ErrorKind::Server)]);
        let _ = call(&service, AZURE).await;
        let until = layer.health().cooling_until(AZURE).unwrap();
        let cooldown = until - Instant::now();
        cooldowns.push(cooldown);
        tokio::time::advance(cooldown).await;
    }
    assert_eq!(cooldowns, [secs(10), secs(15), secs(15)]);

    assert!(call(&service, AZURE).await.is_ok());
    mock.script(AZURE, [MockReply::error(ErrorKind::NotFound)]);
    let _ = call(&service, AZURE).await;
    assert_eq!(
        layer.health().cooling_until(AZURE),
        Some(Instant::now() + secs(5))
    );
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_probe_frees_the_half_open_slot() {
    let mock = MockProvider::new();
    let (layer, service) = stack(CooldownLayer::builder().cooldown(secs(5)), &mock);
    open_then_wait(&service, &mock, secs(5)).await;

    mock.script(AZURE, [MockReply::text("too slow").after(secs(60))]);
    let probe = tokio::time::timeout(secs(1), call(&service, AZURE)).await;
    assert!(probe.is_err(), "the probe was cut off by the caller");

    // Not stuck half-open: the next call is the new probe, and closes it.
    assert!(call(&service, AZURE).await.is_ok());
    assert_eq!(mock.call_count(AZURE), 3);
    assert!(layer.health().is_available(AZURE));
}

#[tokio::test(start_paused = true)]
async fn force_attempt_goes_through_an_open_breaker() {
    let mock = MockProvider::new();
    let (layer, service) = stack(CooldownLayer::builder().cooldown(secs(30)), &mock);
    mock.script(AZURE, [MockReply::error(ErrorKind::NotFound)]);
    let _ = call(&service, AZURE).await;
    assert!(!layer.health().is_available(AZURE));

    let mut forced = request(AZURE);
    forced.extensions_mut().insert(ForceAttempt);
    let response = service.clone().oneshot(forced).await.unwrap();
    assert_eq!(response.text().as_deref(), Some("ok from azure/gpt-4o"));
    assert_eq!(mock.call_count(AZURE), 2);
    // It worked, so the model is back in use.
    assert!(layer.health().is_available(AZURE));
}

#[tokio::test(start_paused = true)]
async fn health_reports_an_open_model_until_its_time() {
    let mock = MockProvider::new();
    mock.script(
        AZURE,
        [MockReply::error(ErrorKind::RateLimited).with_retry_after(secs(3))],
    );
    let (layer, service) = stack(CooldownLayer::builder(), &mock);
    let health = layer.health();
    assert!(health.is_available(AZURE));

    let start = Instant::now();
    let _ = call(&service, AZURE).await;
    assert_eq!(health.cooling_until(AZURE), Some(start + secs(3)));
    assert!(!health.is_available(AZURE));
    assert!(health.is_available(OPENAI));
    tokio::time::advance(secs(2)).await;
    assert!(!health.is_available(AZURE));
    tokio::time::advance(secs(1)).await;
    assert!(health.is_available(AZURE));
}

#[tokio::test(start_paused = true)]
async fn kinds_that_do_not_count_never_trip_the_breaker() {
    let mock = MockProvider::new();
    mock.always(AZURE, MockReply::error(ErrorKind::BadRequest));
    mock.always(OPENAI, MockReply::error(ErrorKind::ContextWindowExceeded));
    let builder = CooldownLayer::builder()
        .consecutive_failures(2)
        .failure_ratio(0.5, secs(10), 3);
    let (layer, service) = stack(builder, &mock);

    for _ in 0..20 {
        assert_eq!(
            call(&service, AZURE).await.unwrap_err().kind(),
            ErrorKind::BadRequest
        );
        let _ = call(&service, OPENAI).await;
    }
    assert_eq!(mock.call_count(AZURE), 20);
    assert_eq!(mock.call_count(OPENAI), 20);
    assert!(layer.health().is_available(AZURE));
}

#[tokio::test(start_paused = true)]
async fn which_kinds_count_and_trip_at_once_can_be_overridden() {
    let mock = MockProvider::new();
    mock.always(AZURE, MockReply::error(ErrorKind::Auth));
    mock.always(OPENAI, MockReply::error(ErrorKind::BadRequest));
    let builder = CooldownLayer::builder()
        .consecutive_failures(2)
        .counting([ErrorKind::BadRequest])
        .tripping_at_once([]);
    let (_, service) = stack(builder, &mock);

    for _ in 0..4 {
        let _ = call(&service, AZURE).await;
        let _ = call(&service, OPENAI).await;
    }
    assert_eq!(mock.call_count(AZURE), 4, "auth no longer counts");
    assert_eq!(mock.call_count(OPENAI), 2, "bad requests now count");
}

#[tokio::test(start_paused = true)]
async fn a_custom_classifier_decides_what_trips() {
    let mock = MockProvider::new();
    mock.always(
        AZURE,
        MockReply::error(ErrorKind::BadRequest).with_status(StatusCode::PAYMENT_REQUIRED),
    );
    let builder = CooldownLayer::builder().classify_with(|e| {
        if e.status() == Some(StatusCode::PAYMENT_REQUIRED) {
            Verdict::Trip(Some(Duration::from_secs(60)))
        } else {
            default_verdict(e)
        }
    });
    let (layer, service) = stack(builder, &mock);

    let start = Instant::now();
    let _ = call(&service, AZURE).await;
    assert_eq!(
        call(&service, AZURE).await.unwrap_err().kind(),
        ErrorKind::CoolingDown
    );
    assert_eq!(layer.health().cooling_until(AZURE), Some(start + secs(60)));
}

#[tokio::test(start_paused = true)]
async fn an_attempt_timeout_counts_but_the_callers_total_budget_does_not() {
    let mock = MockProvider::new();
    mock.always(AZURE, MockReply::text("late").after(secs(60)));
    let layer = CooldownLayer::builder()
        .consecutive_failures(1)
        .build()
        .unwrap();
    let service = ServiceBuilder::new()
        .layer(layer.clone())
        .layer(TimeoutLayer::attempt(secs(10)))
        .service(mock.clone());

    let mut short = request(AZURE);
    short.set_deadline(Instant::now() + secs(2));
    let error = service.clone().oneshot(short).await.unwrap_err();
    assert_eq!(error.timeout_kind(), Some(TimeoutKind::Total));
    assert!(layer.health().is_available(AZURE));

    let error = call(&service, AZURE).await.unwrap_err();
    assert_eq!(error.timeout_kind(), Some(TimeoutKind::Attempt));
    assert!(!layer.health().is_available(AZURE));
    // Both attempts are logged once, by the timeout layer.
    assert_eq!(error.attempts().len(), 1);
}

#[test]
fn invalid_settings_are_rejected_when_built_naming_the_value() {
    let error = CooldownLayer::builder()
        .failure_ratio(1.5, secs(10), 5)
        .build()
        .unwrap_err();
    assert_eq!(error.problems()[0].path, "cooldown.failure_ratio");
    assert!(error.problems()[0].message.contains("1.5"), "{error}");

    let error = CooldownLayer::builder()
        .cooldown(PerModel::new(secs(5)).with(AZURE, Duration::ZERO))
        .failure_ratio_per_model(
            PerModel::new(None).with("gpt 4o", Some(FailureRatio::new(0.5, secs(1), 1))),
        )
        .growing_by(0.5, secs(60))
        .build()
        .unwrap_err();
    let paths: Vec<_> = error.problems().iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "cooldown.growth",
            "cooldown.azure/gpt-4o.cooldown",
            "cooldown.azure/gpt-4o.growth",
            "cooldown.gpt 4o"
        ]
    );
}

/// A store that answers after a network round trip, as a remote one would.
struct RemoteLike(InMemoryStore);

impl HealthView for RemoteLike {
    fn cooling_until(&self, model: &str) -> Option<Instant> {
        self.0.cooling_until(model)
    }
}

impl CooldownStore for RemoteLike {
    fn admit(&self, model: &str, force: bool, now: Instant) -> StoreFuture<Admission> {
        let answer = self.0.admit(model, force, now);
        StoreFuture::boxed(async move {
            tokio::time::sleep(Duration::from_millis(2)).await;
            answer.await
        })
    }

    fn record(
        &self,
        model: &str,
        permit: Permit,
        verdict: Verdict,
        settings: &BreakerSettings,
        now: Instant,
    ) -> StoreFuture<Transition> {
        let answer = self.0.record(model, permit, verdict, settings, now);
        StoreFuture::boxed(async move {
            tokio::time::sleep(Duration::from_millis(2)).await;
            answer.await
        })
    }

    fn release(&self, model: &str, permit: Permit) {
        self.0.release(model, permit);
    }
}

#[tokio::test(start_paused = true)]
async fn a_store_that_answers_later_is_awaited_before_calling_and_after_the_outcome() {
    let mock = MockProvider::new();
    mock.always(AZURE, MockReply::error(ErrorKind::Server));
    let builder = CooldownLayer::builder()
        .consecutive_failures(2)
        .without_failure_ratio()
        .store(Arc::new(RemoteLike(InMemoryStore::new())));
    let (layer, service) = stack(builder, &mock);

    let start = Instant::now();
    assert_eq!(
        call(&service, AZURE).await.unwrap_err().kind(),
        ErrorKind::Server
    );
    // Admission and recording each took one round trip.
    assert_eq!(start.elapsed(), Duration::from_millis(4));
    assert_eq!(
        call(&service, AZURE).await.unwrap_err().kind(),
        ErrorKind::Server
    );
    assert!(!layer.health().is_available(AZURE));
    assert_eq!(
        call(&service, AZURE).await.unwrap_err().kind(),
        ErrorKind::CoolingDown
    );
    assert_eq!(mock.call_count(AZURE), 2);
}
