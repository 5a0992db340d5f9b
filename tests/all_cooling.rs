//! One policy for "everything is cooling", the same for a route and for a
//! model requested directly, in both modes; the earliest recovery as
//! `retry_after` on every error that cooling ends; and mid-stream recovery
//! under the same rules as the first attempt.
//!
//! Paused time, scripted `MockProvider`.

use std::time::Duration;

use futures_util::StreamExt;
use llm_fallback::chat::PerModel;
use llm_fallback::layers::health::AllCooling;
use llm_fallback::layers::retry::Backoff;
use llm_fallback::mock::{MockProvider, MockReply};
use llm_fallback::{
    BoxChatService, ChatError, ChatRequest, ChatResponse, CooldownLayer, ErrorKind, Message,
    ProviderFallbackLayer, RetryLayer, RouteOptions, SharedRng,
};
use tower::{ServiceBuilder, ServiceExt};

const A: &str = "a/model";
const B: &str = "b/model";
/// In no group: requested directly, it is its own only candidate.
const C: &str = "c/model";

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// A and C cool 5 s and B 9 s once tripped; an unknown model (404) trips at once.
fn cooldown(policy: AllCooling) -> CooldownLayer {
    CooldownLayer::builder()
        .cooldown(PerModel::new(secs(5)).with(B, secs(9)))
        .when_all_cooling(policy)
        .build()
        .unwrap()
}

/// Route "route" = [A, B] (recovering cut streams) → Cooldown → Retry(2) → mock.
fn stack(cooldown: &CooldownLayer, mock: &MockProvider) -> BoxChatService {
    let fallback = ProviderFallbackLayer::builder()
        .named_group("route", [A, B])
        .options(RouteOptions::new().recover_streams(true))
        .health(cooldown.health())
        .build()
        .unwrap();
    let retry = RetryLayer::builder()
        .max_retries(2)
        .backoff(
            Backoff::builder()
                .base(Duration::from_millis(10))
                .build()
                .unwrap(),
        )
        .no_budget()
        .rng(SharedRng::seeded(1))
        .build()
        .unwrap();
    BoxChatService::new(
        ServiceBuilder::new()
            .layer(fallback)
            .layer(cooldown.clone())
            .layer(retry)
            .service(mock.clone()),
    )
}

async fn call(service: &BoxChatService, model: &str) -> Result<ChatResponse, ChatError> {
    service
        .clone()
        .oneshot(ChatRequest::new(model, [Message::user("hi")]))
        .await
}

/// Trips every model (A and C until +5 s, B until +9 s); clears the call log.
async fn trip_all(service: &BoxChatService, mock: &MockProvider) {
    for model in [A, B, C] {
        mock.script(model, [MockReply::error(ErrorKind::NotFound)]);
    }
    let _ = call(service, "route").await;
    let _ = call(service, C).await;
    assert!(mock.called_models().len() == 3);
    mock.clear_calls();
}

#[tokio::test(start_paused = true)]
async fn fail_fast_answers_a_route_and_a_direct_model_alike_without_a_call() {
    let mock = MockProvider::new();
    let cooldown = cooldown(AllCooling::FailFast);
    let service = stack(&cooldown, &mock);
    trip_all(&service, &mock).await;
    tokio::time::advance(secs(1)).await;

    let routed = call(&service, "route").await.unwrap_err();
    let direct = call(&service, C).await.unwrap_err();
    assert!(mock.called_models().is_empty(), "no upstream call");
    for e in [&routed, &direct] {
        assert_eq!(e.kind(), ErrorKind::CoolingDown, "{e}");
        // A (and C) recover first, 4 s from now.
        assert_eq!(e.retry_after(), Some(secs(4)), "{e}");
    }
    assert_eq!(routed.attempts().iter().filter(|a| a.upstream).count(), 0);
    assert_eq!(routed.attempts().len(), 2, "two skips");
}

#[tokio::test(start_paused = true)]
async fn try_earliest_gives_a_route_and_a_direct_model_one_call_never_retried() {
    let mock = MockProvider::new();
    let cooldown = cooldown(AllCooling::TryEarliest);
    let service = stack(&cooldown, &mock);
    trip_all(&service, &mock).await;
    tokio::time::advance(secs(1)).await;

    // The route: one call to A, which recovers first; it fails and is not retried.
    mock.script(A, [MockReply::error(ErrorKind::Server)]);
    let routed = call(&service, "route").await.unwrap_err();
    assert_eq!(mock.called_models(), [A]);
    assert_eq!(routed.kind(), ErrorKind::Server);
    let skips = routed.attempts().iter().filter(|a| !a.upstream).count();
    assert_eq!(skips, 2, "both skipped first: {routed}");
    assert_eq!(routed.retry_after(), Some(secs(4)), "{routed}");

    // The model requested directly: the same single call.
    mock.clear_calls();
    mock.script(C, [MockReply::error(ErrorKind::Server)]);
    let direct = call(&service, C).await.unwrap_err();
    assert_eq!(mock.called_models(), [C]);
    assert_eq!(direct.kind(), ErrorKind::Server);

    // And when it answers, it serves.
    mock.clear_calls();
    let served = call(&service, "route").await.unwrap();
    assert_eq!(served.model(), A);
    assert_eq!(mock.called_models(), [A]);
}

#[tokio::test(start_paused = true)]
async fn a_cooling_candidate_is_the_last_resort_after_the_others_failed() {
    for (policy, calls) in [
        (AllCooling::TryEarliest, vec![B, B, B, A]),
        (AllCooling::FailFast, vec![B, B, B]),
    ] {
        let mock = MockProvider::new();
        let cooldown = cooldown(policy);
        let service = stack(&cooldown, &mock);
        mock.script(A, [MockReply::error(ErrorKind::NotFound)]);
        let _ = call(&service, A).await;
        mock.clear_calls();
        mock.always(B, MockReply::error(ErrorKind::Server));

        let result = call(&service, "route").await;
        assert_eq!(mock.called_models(), calls, "{policy:?}");
        match policy {
            AllCooling::TryEarliest => assert_eq!(result.unwrap().model(), A),
            _ => {
                let e = result.unwrap_err();
                // B's own error, with A's recovery as the time to come back.
                assert_eq!(e.kind(), ErrorKind::Server);
                // (less the retries' backoff)
                let wait = e.retry_after().unwrap();
                assert!(wait > secs(4) && wait <= secs(5), "{e}");
            }
        }
    }
}

#[tokio::test(start_paused = true)]
async fn every_cooling_or_limited_error_carries_the_earliest_recovery() {
    let mock = MockProvider::new();
    let cooldown = cooldown(AllCooling::FailFast);
    let service = stack(&cooldown, &mock);
    // B asks for 12 s (a 429 with Retry-After, longer than Retry waits for).
    mock.script(A, [MockReply::error(ErrorKind::NotFound)]);
    mock.always(
        B,
        MockReply::error(ErrorKind::RateLimited).with_retry_after(secs(12)),
    );
    let first = call(&service, "route").await.unwrap_err();
    // A's 404 (5 s) and B's 429 (12 s): A is back first.
    assert_eq!(first.retry_after(), Some(secs(5)), "{first}");
    tokio::time::advance(secs(2)).await;
    let skipped = call(&service, "route").await.unwrap_err();
    assert_eq!(skipped.kind(), ErrorKind::CoolingDown);
    assert_eq!(skipped.retry_after(), Some(secs(3)), "{skipped}");
    mock.script(
        C,
        [MockReply::error(ErrorKind::RateLimited).with_retry_after(secs(12))],
    );
    let _ = call(&service, C).await;
    tokio::time::advance(secs(2)).await;
    let direct = call(&service, C).await.unwrap_err();
    assert_eq!(direct.kind(), ErrorKind::CoolingDown);
    assert_eq!(direct.retry_after(), Some(secs(10)), "{direct}");
}

#[tokio::test(start_paused = true)]
async fn mid_stream_recovery_uses_a_cooling_candidate_by_the_same_rule() {
    let text = "the answer is forty two";
    for (policy, recovered) in [
        (AllCooling::TryEarliest, true),
        (AllCooling::FailFast, false),
    ] {
        let mock = MockProvider::new();
        let cooldown = cooldown(policy);
        let service = stack(&cooldown, &mock);
        // B cools; A serves a stream that is cut after two words.
        mock.script(B, [MockReply::error(ErrorKind::NotFound)]);
        let _ = call(&service, B).await;
        mock.clear_calls();
        mock.script(A, [MockReply::stream_cut(text, 2)]);
        mock.script(B, [MockReply::text(text)]);

        let request = ChatRequest::new("route", [Message::user("hi")]).with_stream(true);
        let response = service.clone().oneshot(request).await.unwrap();
        assert_eq!(response.model(), A);
        let items: Vec<_> = response.into_stream().unwrap().collect().await;
        let words: String = items
            .iter()
            .flatten()
            .flat_map(|c| c.choices.iter())
            .filter_map(|c| c.delta.content.clone())
            .collect();
        match recovered {
            true => {
                assert!(items.iter().all(Result::is_ok), "{items:?}");
                assert_eq!(words.trim(), text, "{policy:?}");
                assert_eq!(mock.called_models(), [A, B]);
            }
            false => {
                let last = items.last().unwrap().as_ref().unwrap_err();
                assert_eq!(last.kind(), ErrorKind::StreamInterrupted);
                assert_eq!(mock.called_models(), [A], "{policy:?}");
            }
        }
    }
}
