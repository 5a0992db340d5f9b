//! Learned hedge delays: a model's delay follows a high percentile of the
//! time its calls take to answer.

use std::time::Duration;

use llm_fallback::layers::hedge::{Hedge, HedgeBudget, LearnedDelay};
use llm_fallback::mock::{MockProvider, MockReply};
use llm_fallback::{ChatRequest, Message, ProviderFallbackLayer, RouteOptions, SharedRng};
use tokio::time::Instant;
use tower::{ServiceBuilder, ServiceExt};

const PRIMARY: &str = "azure/gpt-4o-mini";
const BACKUP: &str = "openai/gpt-4o-mini";

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

#[tokio::test(start_paused = true)]
async fn a_learned_delay_converges_to_the_percentile_and_then_hedges_a_slow_call() {
    let mock = MockProvider::new();
    let rng = SharedRng::seeded(15);
    // Answers uniform between 200 and 600 ms: the 95th percentile is 580 ms.
    let latencies: Vec<_> = (0..400)
        .map(|_| ms(rng.range_f64(200.0, 600.0) as u64))
        .collect();
    mock.script(
        PRIMARY,
        latencies.iter().map(|d| MockReply::text("ok").after(*d)),
    );
    let learned = LearnedDelay::builder()
        .percentile(0.95)
        .window(400)
        .min_observations(50)
        .build()
        .unwrap();
    // Until 50 answers are seen, hedge only after 30 s; then at the learned
    // delay, whose slow calls cut short still count as slow.
    let hedge = Hedge::new(Duration::from_secs(30))
        .learned(learned)
        .budget(every_call());
    let fallback = ProviderFallbackLayer::builder()
        .group([PRIMARY, BACKUP])
        .options(RouteOptions::new().hedge(hedge.clone()))
        .build()
        .unwrap();
    let svc = ServiceBuilder::new().layer(fallback).service(mock.clone());

    assert_eq!(hedge.delay(PRIMARY, PRIMARY), Some(Duration::from_secs(30)));
    for _ in 0..400 {
        svc.clone().oneshot(request(PRIMARY)).await.unwrap();
    }
    let delay = hedge.delay(PRIMARY, PRIMARY).unwrap();
    assert!(
        (delay.as_secs_f64() - 0.58).abs() < 0.02,
        "learned {delay:?}, expected about 580 ms"
    );

    // A call far slower than usual is hedged at the learned delay.
    mock.script(
        PRIMARY,
        [MockReply::text("stuck").after(Duration::from_secs(30))],
    );
    mock.clear_calls();
    let start = Instant::now();
    let response = svc.oneshot(request(PRIMARY)).await.unwrap();
    assert_eq!(response.model(), BACKUP);
    assert_eq!(start.elapsed(), delay);
}
