//! The Retry layer: counts per model, which kinds, backoff curves,
//! Retry-After, deadlines, the budget, custom policies, the attempt log.

use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::future::join_all;
use llm_fallback::chat::{Attempt, AttemptLog};
use llm_fallback::layers::retry::{
    Backoff, Decision, ExponentialRetry, Jitter, Retry, RetryBudget, RetryContext, RetryLayer,
};
use llm_fallback::mock::{MockProvider, MockReply};
use llm_fallback::{ChatError, ChatRequest, ChatResponse, ErrorKind, Message, SharedRng};
use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt};

const A: &str = "azure/gpt-4o";
const B: &str = "openai/gpt-4o";

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn request(model: &str) -> ChatRequest {
    ChatRequest::new(model, [Message::user("hello")])
}

fn backoff(base: Duration, factor: f64, cap: Duration, jitter: Jitter) -> Backoff {
    Backoff::builder()
        .base(base)
        .factor(factor)
        .cap(cap)
        .jitter(jitter)
        .build()
        .unwrap()
}

/// 100 ms, 200 ms, 400 ms ... up to 1 s, exactly.
fn exact_backoff() -> Backoff {
    backoff(ms(100), 2.0, ms(1000), Jitter::None)
}

fn layer(max_retries: u32) -> RetryLayer {
    RetryLayer::builder()
        .max_retries(max_retries)
        .backoff(exact_backoff())
        .rng(SharedRng::seeded(1))
        .build()
        .unwrap()
}

/// The gaps between consecutive upstream calls.
fn gaps(mock: &MockProvider) -> Vec<Duration> {
    let calls = mock.calls();
    calls.windows(2).map(|w| w[1].at - w[0].at).collect()
}

#[tokio::test(start_paused = true)]
async fn per_model_retry_counts_are_exact() {
    let mock = MockProvider::new();
    mock.always(A, MockReply::error(ErrorKind::Server));
    mock.always(B, MockReply::error(ErrorKind::Server));
    let retry = RetryLayer::builder()
        .max_retries(2)
        .max_retries_for(B, 0)
        .backoff(exact_backoff())
        .build()
        .unwrap()
        .layer(mock.clone());

    let error = retry.clone().oneshot(request(A)).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Server);
    assert_eq!(mock.call_count(A), 3);
    assert_eq!(error.attempts().len(), 3);

    let error = retry.oneshot(request(B)).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Server);
    assert_eq!(mock.call_count(B), 1);
    assert_eq!(error.attempts().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn retryable_kinds_are_retried() {
    for kind in [
        ErrorKind::RateLimited,
        ErrorKind::Server,
        ErrorKind::Connect,
    ] {
        let mock = MockProvider::new();
        mock.always(A, MockReply::error(kind));
        let error = layer(2)
            .layer(mock.clone())
            .oneshot(request(A))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), kind);
        assert_eq!(mock.call_count(A), 3, "{kind} should be retried twice");
    }
}

#[tokio::test(start_paused = true)]
async fn non_retryable_kinds_are_returned_after_one_call() {
    for kind in [
        ErrorKind::Auth,
        ErrorKind::BadRequest,
        ErrorKind::Timeout,
        ErrorKind::NotFound,
        ErrorKind::ContextWindowExceeded,
        ErrorKind::ContentFilter,
    ] {
        let mock = MockProvider::new();
        mock.always(A, MockReply::error(kind));
        let start = Instant::now();
        let error = layer(3)
            .layer(mock.clone())
            .oneshot(request(A))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), kind);
        assert_eq!(mock.call_count(A), 1, "{kind} must not be retried");
        assert_eq!(start.elapsed(), Duration::ZERO, "{kind} must not wait");
    }
}

#[tokio::test(start_paused = true)]
async fn success_on_the_second_try_returns_the_response_with_two_attempts() {
    let mock = MockProvider::new();
    mock.script(
        A,
        [
            MockReply::error(ErrorKind::Server),
            MockReply::text("second time lucky"),
        ],
    );
    let response = layer(2)
        .layer(mock.clone())
        .oneshot(request(A))
        .await
        .unwrap();
    assert_eq!(response.text().as_deref(), Some("second time lucky"));
    assert_eq!(mock.call_count(A), 2);
    let attempts = response.attempts();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0].error, Some(ErrorKind::Server));
    assert!(attempts[1].is_success());
}

#[tokio::test(start_paused = true)]
async fn the_attempt_log_lists_every_attempt_with_its_latency() {
    let mock = MockProvider::new();
    mock.script(
        A,
        [
            MockReply::error(ErrorKind::Server).after(ms(50)),
            MockReply::error(ErrorKind::RateLimited).after(ms(20)),
            MockReply::text("ok").after(ms(30)),
        ],
    );
    let response = layer(2)
        .layer(mock.clone())
        .oneshot(request(A))
        .await
        .unwrap();
    let attempts = response.attempts();
    let summary: Vec<_> = attempts
        .iter()
        .map(|a| (a.model.as_str(), a.error, a.latency, a.upstream))
        .collect();
    assert_eq!(
        summary,
        [
            (A, Some(ErrorKind::Server), ms(50), true),
            (A, Some(ErrorKind::RateLimited), ms(20), true),
            (A, None, ms(30), true),
        ]
    );
    assert_eq!(attempts[0].status.map(|s| s.as_u16()), Some(500));
}

#[tokio::test(start_paused = true)]
async fn attempts_an_inner_layer_recorded_are_not_logged_twice() {
    // An inner layer (an attempt Timeout, say) that records its own outcome.
    #[derive(Clone)]
    struct Recording(MockProvider);
    impl Service<ChatRequest> for Recording {
        type Response = ChatResponse;
        type Error = ChatError;
        type Future = llm_fallback::chat::ChatFuture;
        fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ChatError>> {
            self.0.poll_ready(cx)
        }
        fn call(&mut self, mut request: ChatRequest) -> Self::Future {
            let log = AttemptLog::of(&mut request);
            let call = self.0.call(request);
            llm_fallback::chat::ChatFuture::new(async move {
                let result = call.await;
                let mut attempt = Attempt::success("inner/label", Duration::ZERO);
                attempt.error = result.as_ref().err().map(ChatError::kind);
                log.push(attempt);
                result
            })
        }
    }
    let mock = MockProvider::new();
    mock.script(
        A,
        [MockReply::error(ErrorKind::Server), MockReply::text("ok")],
    );
    let response = layer(2)
        .layer(Recording(mock))
        .oneshot(request(A))
        .await
        .unwrap();
    let models: Vec<_> = response
        .attempts()
        .iter()
        .map(|a| a.model.as_str())
        .collect();
    assert_eq!(models, ["inner/label", "inner/label"]);
}

#[tokio::test(start_paused = true)]
async fn without_jitter_delays_follow_the_curve_exactly() {
    let mock = MockProvider::new();
    mock.always(A, MockReply::error(ErrorKind::Server));
    let _ = layer(5).layer(mock.clone()).oneshot(request(A)).await;
    assert_eq!(gaps(&mock), [ms(100), ms(200), ms(400), ms(800), ms(1000)]);
}

#[tokio::test(start_paused = true)]
async fn full_jitter_delays_stay_under_the_curve_and_spread_over_it() {
    let curve = backoff(ms(100), 2.0, ms(1000), Jitter::Full);
    let mut ratios = Vec::new();
    for seed in 0..20 {
        let mock = MockProvider::new();
        mock.always(A, MockReply::error(ErrorKind::Server));
        let retry = RetryLayer::builder()
            .max_retries(5)
            .backoff(curve)
            .no_budget()
            .rng(SharedRng::seeded(seed))
            .build()
            .unwrap();
        let _ = retry.layer(mock.clone()).oneshot(request(A)).await;
        let gaps = gaps(&mock);
        assert_eq!(gaps.len(), 5);
        for (n, gap) in gaps.iter().enumerate() {
            let ceiling = curve.ceiling(n as u32);
            // Tokio's timer rounds up to the millisecond.
            assert!(
                *gap <= ceiling + ms(1),
                "seed {seed}: retry {n} waited {gap:?} > {ceiling:?}"
            );
            ratios.push(gap.as_secs_f64() / ceiling.as_secs_f64());
        }
    }
    let mean = ratios.iter().sum::<f64>() / ratios.len() as f64;
    assert!(
        (0.35..0.65).contains(&mean),
        "uniform jitter should average half the curve, got {mean}"
    );
}

#[tokio::test(start_paused = true)]
async fn decorrelated_jitter_waits_between_base_and_factor_times_the_previous_delay() {
    let curve = backoff(ms(100), 3.0, ms(2000), Jitter::Decorrelated);
    let mut distinct = std::collections::BTreeSet::new();
    for seed in 0..10 {
        let mock = MockProvider::new();
        mock.always(A, MockReply::error(ErrorKind::Server));
        let retry = RetryLayer::builder()
            .max_retries(6)
            .backoff(curve)
            .no_budget()
            .rng(SharedRng::seeded(seed))
            .build()
            .unwrap();
        let _ = retry.layer(mock.clone()).oneshot(request(A)).await;
        let mut previous = ms(100);
        for gap in gaps(&mock) {
            let high = (previous * 3).min(ms(2000));
            assert!(
                gap >= ms(100) && gap <= high + ms(1),
                "{gap:?} outside [100ms, {high:?}]"
            );
            distinct.insert(gap);
            previous = gap;
        }
    }
    assert!(
        distinct.len() > 30,
        "delays should be random, got {distinct:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn backoff_is_configured_per_model() {
    let mock = MockProvider::new();
    mock.script(
        A,
        [MockReply::error(ErrorKind::Server), MockReply::text("a")],
    );
    mock.script(
        B,
        [MockReply::error(ErrorKind::Server), MockReply::text("b")],
    );
    let retry = RetryLayer::builder()
        .backoff(exact_backoff())
        .backoff_for(B, backoff(ms(1500), 2.0, ms(5000), Jitter::None))
        .build()
        .unwrap()
        .layer(mock.clone());

    let start = Instant::now();
    retry.clone().oneshot(request(A)).await.unwrap();
    assert_eq!(start.elapsed(), ms(100));
    let start = Instant::now();
    retry.oneshot(request(B)).await.unwrap();
    assert_eq!(start.elapsed(), ms(1500));
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_waited_for_even_when_the_backoff_is_shorter() {
    let mock = MockProvider::new();
    mock.script(
        A,
        [
            MockReply::error(ErrorKind::RateLimited).with_retry_after(Duration::from_secs(2)),
            MockReply::text("ok"),
        ],
    );
    let response = layer(2)
        .layer(mock.clone())
        .oneshot(request(A))
        .await
        .unwrap();
    assert_eq!(response.text().as_deref(), Some("ok"));
    assert!(
        gaps(&mock)[0] >= Duration::from_secs(2),
        "{:?}",
        gaps(&mock)
    );
}

#[tokio::test(start_paused = true)]
async fn retry_after_beyond_the_maximum_returns_the_error_at_once() {
    let slow = || {
        let mock = MockProvider::new();
        mock.script(
            A,
            [
                MockReply::error(ErrorKind::RateLimited).with_retry_after(Duration::from_secs(60)),
                MockReply::text("ok"),
            ],
        );
        mock
    };

    // The default maximum is 10 s: a fallback should act now instead.
    let mock = slow();
    let start = Instant::now();
    let error = layer(2)
        .layer(mock.clone())
        .oneshot(request(A))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::RateLimited);
    assert_eq!(error.retry_after(), Some(Duration::from_secs(60)));
    assert_eq!(mock.call_count(A), 1);
    assert_eq!(start.elapsed(), Duration::ZERO);

    // A larger maximum waits it out.
    let mock = slow();
    let retry = RetryLayer::builder()
        .max_retry_after(Duration::from_secs(90))
        .backoff(exact_backoff())
        .build()
        .unwrap();
    let start = Instant::now();
    retry.layer(mock.clone()).oneshot(request(A)).await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(60));
}

#[tokio::test(start_paused = true)]
async fn the_request_deadline_is_never_slept_past() {
    let mock = MockProvider::new();
    mock.always(A, MockReply::error(ErrorKind::Server).after(ms(100)));
    let retry = RetryLayer::builder()
        .max_retries(10)
        .backoff(backoff(
            Duration::from_secs(1),
            2.0,
            Duration::from_secs(30),
            Jitter::None,
        ))
        .build()
        .unwrap();
    let start = Instant::now();
    let deadline = start + Duration::from_secs(3);
    let mut req = request(A);
    req.set_deadline(deadline);

    let error = retry.layer(mock.clone()).oneshot(req).await.unwrap_err();
    // Call at 0 fails at 0.1 s, waits 1 s; call at 1.1 s fails at 1.2 s; a
    // 2 s wait would end at 3.2 s, past the deadline: give up at 1.2 s.
    assert_eq!(error.kind(), ErrorKind::Server);
    assert_eq!(mock.call_count(A), 2);
    assert_eq!(start.elapsed(), ms(1200));
    assert!(Instant::now() <= deadline);
    assert_eq!(error.attempts().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn fails_fast_when_the_backoff_does_not_fit_before_the_deadline() {
    let mock = MockProvider::new();
    mock.script(
        A,
        [MockReply::error(ErrorKind::Server), MockReply::text("ok")],
    );
    let retry = RetryLayer::builder()
        .backoff(backoff(
            Duration::from_secs(1),
            2.0,
            Duration::from_secs(8),
            Jitter::None,
        ))
        .build()
        .unwrap();
    let start = Instant::now();
    let mut req = request(A);
    req.set_deadline(start + ms(500));
    let error = retry.layer(mock.clone()).oneshot(req).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Server);
    assert_eq!(
        start.elapsed(),
        Duration::ZERO,
        "no sleep when it cannot fit"
    );
    assert_eq!(mock.call_count(A), 1);
}

#[tokio::test(start_paused = true)]
async fn the_budget_stops_a_retry_storm() {
    async fn storm(budgeted: bool) -> usize {
        let mock = MockProvider::new();
        mock.always(A, MockReply::error(ErrorKind::Server).after(ms(10)));
        let mut builder = RetryLayer::builder().max_retries(2).backoff(backoff(
            ms(10),
            2.0,
            ms(100),
            Jitter::None,
        ));
        builder = if budgeted {
            // 1 retry per 4 calls, plus 1 per second over a 1 s window.
            builder.budget(RetryBudget::new(Duration::from_secs(1), 1, 0.25).unwrap())
        } else {
            builder.no_budget()
        };
        let retry = builder.build().unwrap().layer(mock.clone());
        let calls = (0..100).map(|_| retry.clone().oneshot(request(A)));
        let results = join_all(calls).await;
        assert!(results
            .iter()
            .all(|r| r.as_ref().unwrap_err().kind() == ErrorKind::Server));
        mock.call_count(A)
    }

    assert_eq!(
        storm(false).await,
        300,
        "without a budget every call is retried twice"
    );
    let upstream = storm(true).await;
    let retries = upstream - 100;
    assert!(
        retries <= 25 + 1,
        "{retries} retries exceed 0.25 × 100 calls + 1"
    );
    assert!(
        retries >= 20,
        "the budget should still allow some retries, got {retries}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_custom_predicate_decides_which_failures_are_retried() {
    let mock = MockProvider::new();
    mock.always(A, MockReply::error(ErrorKind::Timeout));
    mock.always(B, MockReply::error(ErrorKind::Server));
    let retry = RetryLayer::builder()
        .max_retries(2)
        .backoff(exact_backoff())
        .retry_if(|e| e.kind() == ErrorKind::Timeout)
        .build()
        .unwrap()
        .layer(mock.clone());
    let _ = retry.clone().oneshot(request(A)).await;
    let _ = retry.oneshot(request(B)).await;
    assert_eq!(mock.call_count(A), 3);
    assert_eq!(mock.call_count(B), 1);
}

#[tokio::test(start_paused = true)]
async fn a_custom_policy_decides_whether_and_when() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let policy = move |ctx: &RetryContext<'_>| {
        log.lock()
            .unwrap()
            .push((ctx.attempt(), ctx.previous_delay()));
        if ctx.error().message() == "overloaded" && ctx.attempt() < 4 {
            Decision::Retry(Duration::from_secs(3))
        } else {
            Decision::Stop("not overloaded")
        }
    };
    let mock = MockProvider::new();
    mock.always(
        A,
        MockReply::error(ErrorKind::Server).with_message("overloaded"),
    );
    mock.always(B, MockReply::error(ErrorKind::Server));
    let retry = RetryLayer::builder()
        .policy(policy)
        .build()
        .unwrap()
        .layer(mock.clone());

    let _ = retry.clone().oneshot(request(A)).await;
    assert_eq!(mock.call_count(A), 4);
    assert_eq!(gaps(&mock), [Duration::from_secs(3); 3]);
    let three = Some(Duration::from_secs(3));
    assert_eq!(
        *seen.lock().unwrap(),
        [(1, None), (2, three), (3, three), (4, three)]
    );

    let _ = retry.oneshot(request(B)).await;
    assert_eq!(mock.call_count(B), 1);
}

#[tokio::test(start_paused = true)]
async fn the_built_in_policy_can_be_used_as_a_custom_one() {
    let policy = ExponentialRetry::new(1).with_backoff(exact_backoff());
    let mock = MockProvider::new();
    mock.always(A, MockReply::error(ErrorKind::Connect));
    let _ = RetryLayer::builder()
        .policy(policy)
        .build()
        .unwrap()
        .layer(mock.clone())
        .oneshot(request(A))
        .await;
    assert_eq!(mock.call_count(A), 2);
}

/// Pending on the first poll of each readiness cycle; panics when called
/// without having been polled ready.
struct StrictReady {
    inner: MockProvider,
    ready: bool,
    pending_next: bool,
}

impl Clone for StrictReady {
    fn clone(&self) -> Self {
        StrictReady {
            inner: self.inner.clone(),
            ready: false,
            pending_next: true,
        }
    }
}

impl Service<ChatRequest> for StrictReady {
    type Response = ChatResponse;
    type Error = ChatError;
    type Future = llm_fallback::chat::ChatFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ChatError>> {
        if self.pending_next {
            self.pending_next = false;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        self.ready = true;
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: ChatRequest) -> Self::Future {
        assert!(self.ready, "called without being polled ready");
        self.ready = false;
        self.pending_next = true;
        self.inner.call(request)
    }
}

#[tokio::test(start_paused = true)]
async fn every_retry_drives_the_inner_service_ready_again() {
    let mock = MockProvider::new();
    mock.script(
        A,
        [
            MockReply::error(ErrorKind::Server),
            MockReply::error(ErrorKind::Server),
            MockReply::text("ok"),
        ],
    );
    let inner = StrictReady {
        inner: mock.clone(),
        ready: false,
        pending_next: true,
    };
    let response = Retry::new(inner, RetryLayer::new(2))
        .oneshot(request(A))
        .await
        .unwrap();
    assert_eq!(response.text().as_deref(), Some("ok"));
    assert_eq!(mock.call_count(A), 3);
}

#[test]
fn invalid_backoffs_are_rejected_naming_the_bad_value() {
    let error = Backoff::builder().factor(0.5).build().unwrap_err();
    assert_eq!(error.problems()[0].path, "backoff.factor");
    assert!(error.to_string().contains("0.5"), "{error}");

    let error = Backoff::builder().factor(f64::NAN).build().unwrap_err();
    assert!(error.to_string().contains("NaN"), "{error}");

    let error = Backoff::builder()
        .base(Duration::from_secs(10))
        .cap(Duration::from_secs(2))
        .build()
        .unwrap_err();
    assert!(
        error.to_string().contains("2s") && error.to_string().contains("10s"),
        "{error}"
    );

    let error = Backoff::builder().base(Duration::ZERO).build().unwrap_err();
    assert_eq!(error.problems()[0].path, "backoff.base");
}

#[test]
fn invalid_layer_settings_are_rejected_at_build_time() {
    let error = RetryLayer::builder()
        .max_retries_for("gpt-4o", 1)
        .backoff_for("azure/gpt 4o", Backoff::default())
        .build()
        .unwrap_err();
    assert_eq!(error.problems().len(), 2);
    assert!(error.to_string().contains("\"gpt-4o\""), "{error}");
    assert!(error.to_string().contains("\"azure/gpt 4o\""), "{error}");

    let error = RetryLayer::builder()
        .max_retries(3)
        .policy(|_: &RetryContext<'_>| Decision::Stop("never"))
        .build()
        .unwrap_err();
    assert!(error.to_string().contains("max_retries"), "{error}");

    let error = RetryBudget::new(Duration::from_secs(10), 1, -1.0).unwrap_err();
    assert!(error.to_string().contains("-1"), "{error}");
    let error = RetryBudget::new(Duration::from_millis(10), 1, 0.2).unwrap_err();
    assert!(error.to_string().contains("10ms"), "{error}");
}
