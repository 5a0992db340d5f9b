//! A skipped model says why in its error and its attempt: its breaker was
//! open, it was at its rpm limit, or adaptive throttling shed the call, so
//! the gateway's metrics and logs count each apart without reading messages.
//!
//! Paused time, scripted `MockProvider`, seeded randomness.

use std::time::Duration;

use llm_fallback::chat::SkipReason;
use llm_fallback::layers::health::{AllCooling, Health};
use llm_fallback::layers::limit::Limits;
use llm_fallback::mock::{MockProvider, MockReply};
use llm_fallback::{
    BoxChatService, ChatError, ChatRequest, CooldownLayer, ErrorKind, LimitLayer, Message,
    ProviderFallbackLayer, SharedRng,
};
use tower::{ServiceBuilder, ServiceExt};

const A: &str = "a/model";

fn request(model: &str) -> ChatRequest {
    ChatRequest::new(model, [Message::user("hi")])
}

/// A route `"route"` of the one model `A`, over `inner`.
fn route(health: Health, inner: BoxChatService) -> BoxChatService {
    let fallback = ProviderFallbackLayer::builder()
        .named_group("route", [A])
        .health(health)
        .build()
        .unwrap();
    BoxChatService::new(ServiceBuilder::new().layer(fallback).service(inner))
}

/// Calls the route once, expecting `A` skipped: the final error's reason
/// and the one its attempt logged.
async fn skipped(svc: &BoxChatService) -> (Option<SkipReason>, Option<SkipReason>) {
    let e = svc.clone().oneshot(request("route")).await.unwrap_err();
    let last = e.attempts().last().cloned().expect("the skip is logged");
    assert_eq!(last.error, Some(ErrorKind::CoolingDown), "{e}");
    assert!(!last.upstream, "a skip is no upstream call: {e}");
    (e.skip_reason(), last.skip)
}

#[test]
fn only_a_cooling_down_error_has_a_skip_reason() {
    let cooling = ChatError::cooling_down(A, tokio::time::Instant::now());
    assert_eq!(cooling.skip_reason(), Some(SkipReason::Cooling));
    let limited = cooling.with_skip_reason(SkipReason::Limited);
    assert_eq!(limited.skip_reason(), Some(SkipReason::Limited));
    let server = ChatError::new(ErrorKind::Server, "boom").with_skip_reason(SkipReason::Shed);
    assert_eq!(server.skip_reason(), None);
    assert_eq!(SkipReason::Shed.as_str(), "shed");
}

#[tokio::test(start_paused = true)]
async fn an_open_breaker_skips_for_cooling() {
    let mock = MockProvider::new();
    mock.always(A, MockReply::error(ErrorKind::Server));
    let cooldown = CooldownLayer::builder()
        .consecutive_failures(1)
        .when_all_cooling(AllCooling::FailFast)
        .rng(SharedRng::seeded(1))
        .build()
        .unwrap();
    let inner = ServiceBuilder::new()
        .layer(cooldown.clone())
        .service(mock.clone());
    let svc = route(cooldown.health(), BoxChatService::new(inner));
    let first = svc.clone().oneshot(request("route")).await.unwrap_err();
    assert_eq!(
        first.attempts().last().unwrap().error,
        Some(ErrorKind::Server)
    );
    let (final_reason, logged) = skipped(&svc).await;
    assert_eq!(final_reason, Some(SkipReason::Cooling));
    assert_eq!(logged, Some(SkipReason::Cooling));
    assert_eq!(mock.call_count(A), 1);
}

#[tokio::test(start_paused = true)]
async fn a_model_at_its_rpm_limit_skips_for_limited() {
    let mock = MockProvider::new();
    mock.always(A, MockReply::text("ok"));
    let limit = LimitLayer::builder()
        .limits(A, Limits::default().with_rpm(1))
        .build()
        .unwrap();
    let inner = ServiceBuilder::new().layer(limit).service(mock.clone());
    let svc = route(Health::always_healthy(), BoxChatService::new(inner));
    svc.clone().oneshot(request("route")).await.unwrap();
    let (final_reason, logged) = skipped(&svc).await;
    assert_eq!(final_reason, Some(SkipReason::Limited));
    assert_eq!(logged, Some(SkipReason::Limited));
    assert_eq!(mock.call_count(A), 1);
}

#[tokio::test(start_paused = true)]
async fn a_call_shed_by_adaptive_throttling_skips_for_shed() {
    let mock = MockProvider::new();
    mock.always(A, MockReply::error(ErrorKind::Server));
    // The throttle alone: no breaker rule trips.
    let cooldown = CooldownLayer::builder()
        .consecutive_failures(0)
        .without_failure_ratio()
        .rng(SharedRng::seeded(3))
        .build()
        .unwrap();
    let inner = ServiceBuilder::new()
        .layer(cooldown.clone())
        .service(mock.clone());
    let svc = route(cooldown.health(), BoxChatService::new(inner));
    for _ in 0..200 {
        let e = svc.clone().oneshot(request("route")).await.unwrap_err();
        let last = e.attempts().last().cloned().unwrap();
        if last.error == Some(ErrorKind::CoolingDown) {
            assert_eq!(e.skip_reason(), Some(SkipReason::Shed), "{e}");
            assert_eq!(last.skip, Some(SkipReason::Shed), "{e}");
            assert!(!last.upstream);
            return;
        }
        assert_eq!(last.skip, None, "an upstream failure is no skip");
        tokio::time::advance(Duration::from_millis(10)).await;
    }
    panic!("a provider failing every call was never shed");
}
