//! A small soak under paused time: three providers failing 15 % of calls at
//! random (seeded), one of them down 15 s every 90 s, a route over all
//! three with one retry and a 2 s cooldown. The stack must serve within half
//! a point of simply trying the candidates in turn, while the provider that
//! is down gets a few probes, not a share of the traffic.
//!
//! (The HTTP soak over real sockets, with streaming, lives in `bench/`.)

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use llm_fallback::layers::retry::Backoff;
use llm_fallback::mock::MockProvider;
use llm_fallback::{
    BoxChatService, ChatError, ChatRequest, CooldownLayer, ErrorKind, Message,
    ProviderFallbackLayer, RetryLayer, SharedRng,
};
use tokio::time::Instant;
use tower::{service_fn, ServiceBuilder, ServiceExt};

const MODELS: [&str; 3] = ["a/m", "b/m", "c/m"];
const REQUESTS: usize = 10_000;

/// Calls made to each provider, and those made while it was down.
#[derive(Default)]
struct Counts {
    calls: [AtomicUsize; 3],
    while_down: AtomicUsize,
    /// Calls after the first 5 s (once breakers had time to open).
    late: AtomicUsize,
}

/// The upstream: `a/m`, first in the route, is down from second 30 to 45 of
/// every 90; every call
/// fails with probability `rate` otherwise, with a kind drawn at random.
fn upstream(
    rate: f64,
    healthy_after: Option<Duration>,
    seed: u64,
    counts: Arc<Counts>,
) -> impl tower::Service<
    ChatRequest,
    Response = llm_fallback::ChatResponse,
    Error = ChatError,
    Future = impl Send,
> + Clone
       + Send
       + 'static {
    let rng = SharedRng::seeded(seed);
    let mock = MockProvider::new();
    let start = Instant::now();
    service_fn(move |request: ChatRequest| {
        let (rng, mock, counts) = (rng.clone(), mock.clone(), counts.clone());
        async move {
            let i = MODELS.iter().position(|m| *m == request.model()).unwrap();
            counts.calls[i].fetch_add(1, Ordering::Relaxed);
            if start.elapsed() >= Duration::from_secs(5) {
                counts.late.fetch_add(1, Ordering::Relaxed);
            }
            let second = start.elapsed().as_secs() % 90;
            if i == 0 && (30..45).contains(&second) {
                counts.while_down.fetch_add(1, Ordering::Relaxed);
                return Err(ChatError::new(ErrorKind::Connect, "connection refused"));
            }
            let healthy = healthy_after.is_some_and(|t| start.elapsed() >= t);
            if !healthy && rng.f64() < rate {
                let kinds = [
                    ErrorKind::Server,
                    ErrorKind::RateLimited,
                    ErrorKind::Auth,
                    ErrorKind::Connect,
                    ErrorKind::Timeout,
                ];
                let kind = kinds[(rng.f64() * kinds.len() as f64) as usize];
                return Err(ChatError::new(kind, "injected fault"));
            }
            mock.oneshot(request).await
        }
    })
}

/// Success rate of `REQUESTS` calls, 10 ms apart, with or without breakers.
async fn run(rate: f64, breakers: bool) -> (f64, Arc<Counts>) {
    run_until(rate, None, breakers).await.0
}

/// `run`, with every fault gone after `healthy_after`; also the success
/// rate of the requests in the 5 s that start one cooldown after it.
async fn run_until(
    rate: f64,
    healthy_after: Option<Duration>,
    breakers: bool,
) -> ((f64, Arc<Counts>), f64) {
    let counts = Arc::new(Counts::default());
    let retry = RetryLayer::builder()
        .max_retries(1)
        .backoff(
            Backoff::builder()
                .base(Duration::from_millis(20))
                .build()
                .unwrap(),
        )
        .no_budget()
        .rng(SharedRng::seeded(9))
        .build()
        .unwrap();
    let cooldown = CooldownLayer::builder()
        .cooldown(Duration::from_secs(2))
        .rng(SharedRng::seeded(5))
        .build()
        .unwrap();
    let mut fallback = ProviderFallbackLayer::builder().named_group("route", MODELS);
    if breakers {
        fallback = fallback.health(cooldown.health());
    }
    let service = BoxChatService::new(
        ServiceBuilder::new()
            .layer(fallback.build().unwrap())
            .option_layer(breakers.then_some(cooldown))
            .layer(retry)
            .service(upstream(rate, healthy_after, 1, counts.clone())),
    );
    let start = Instant::now();
    let (mut served, mut after, mut served_after) = (0, 0, 0);
    for _ in 0..REQUESTS {
        let request = ChatRequest::new("route", [Message::user("hi")]);
        let ok = service.clone().oneshot(request).await.is_ok();
        served += usize::from(ok);
        let elapsed = start.elapsed();
        // From one cooldown (2 s, and a margin) after the faults stop: the
        // breakers' probes have had their chance.
        let window = healthy_after.map(|t| t + Duration::from_millis(2500));
        if window.is_some_and(|w| elapsed >= w && elapsed < w + Duration::from_secs(5)) {
            after += 1;
            served_after += usize::from(ok);
        }
        tokio::time::advance(Duration::from_millis(10)).await;
    }
    let recovered = served_after as f64 / after.max(1) as f64;
    ((served as f64 / REQUESTS as f64, counts), recovered)
}

#[tokio::test(start_paused = true)]
async fn at_15_percent_faults_the_breakers_cost_at_most_half_a_point() {
    let (in_turn, _) = run(0.15, false).await;
    let (with_breakers, counts) = run(0.15, true).await;
    println!("15 %: in turn {in_turn:.4}, with breakers {with_breakers:.4}");
    assert!(
        with_breakers >= in_turn - 0.005,
        "{with_breakers} against {in_turn}"
    );
    // 100 s: one outage of a/m, 15 s (1 500 requests) with 2 s cooldowns:
    // a few calls trip it, then a probe per cooldown and the rare last resort.
    let down = counts.while_down.load(Ordering::Relaxed);
    println!("calls to a/m while down: {down}");
    assert!(down <= 40, "{down} calls to the provider that was down");
}

#[tokio::test(start_paused = true)]
async fn at_50_percent_faults_the_breakers_cost_little() {
    let (in_turn, _) = run(0.5, false).await;
    let (with_breakers, _) = run(0.5, true).await;
    println!("50 %: in turn {in_turn:.4}, with breakers {with_breakers:.4}");
    assert!(
        with_breakers >= in_turn - 0.03,
        "{with_breakers} against {in_turn}"
    );
}

#[tokio::test(start_paused = true)]
async fn with_every_provider_down_a_request_costs_at_most_1_1_upstream_calls() {
    let (with_breakers, counts) = run(1.0, true).await;
    assert_eq!(with_breakers, 0.0);
    // Requests after the first 5 s: 9 500.
    let per_request = counts.late.load(Ordering::Relaxed) as f64 / (REQUESTS - 500) as f64;
    println!("all down: {per_request:.3} upstream calls per request");
    assert!(per_request <= 1.1, "{per_request}");
}

#[tokio::test(start_paused = true)]
async fn providers_back_from_an_outage_serve_again_within_seconds() {
    // Down for 60 s, then healthy: within a cooldown the probes close the
    // breakers, and the throttle's memory of the outage (thousands of
    // failed or shed calls in its window) no longer sheds the traffic.
    let (_, recovered) = run_until(1.0, Some(Duration::from_secs(60)), true).await;
    println!("served from one cooldown after the outage: {recovered:.4}");
    assert!(recovered >= 0.99, "{recovered}");
}
