//! WeightedBalance: weighted draws, renormalised re-draws, named and zero-weight candidates, sticky keys.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use llm_fallback::layers::balance::{BalanceConfig, StickyKey};
use llm_fallback::layers::health::{ForceAttempt, Health, HealthView};
use llm_fallback::mock::{MockProvider, MockReply};
use llm_fallback::{
    ChatError, ChatRequest, ChatResponse, ErrorKind, Message, SharedRng, WeightedBalance,
    WeightedBalanceLayer,
};
use tokio::time::Instant;
use tower::{service_fn, Layer, Service, ServiceExt};

const A: &str = "azure/gpt-4o";
const B: &str = "openai/gpt-4o";
const C: &str = "anthropic/claude-3-5-sonnet-20240620";
const Z: &str = "azure-eu/gpt-4o";

fn request(model: &str) -> ChatRequest {
    ChatRequest::new(model, [Message::user("hello")])
}

fn layer(weights: [(&str, f64); 3], seed: u64) -> WeightedBalanceLayer {
    WeightedBalanceLayer::builder()
        .route("gpt-4o", weights)
        .rng(SharedRng::seeded(seed))
        .build()
        .unwrap()
}

async fn send<S>(
    service: &mut WeightedBalance<S>,
    req: ChatRequest,
) -> Result<ChatResponse, ChatError>
where
    S: Service<ChatRequest, Response = ChatResponse, Error = ChatError> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    service.ready().await?.call(req).await
}

fn share(counts: &HashMap<String, usize>, model: &str, total: usize) -> f64 {
    *counts.get(model).unwrap_or(&0) as f64 / total as f64
}

#[derive(Clone, Default)]
struct FakeHealth(Arc<Mutex<HashMap<String, Instant>>>);

impl FakeHealth {
    fn cool(&self, model: &str, for_: Duration) {
        self.0
            .lock()
            .unwrap()
            .insert(model.into(), Instant::now() + for_);
    }
}

impl HealthView for FakeHealth {
    fn cooling_until(&self, model: &str) -> Option<Instant> {
        self.0.lock().unwrap().get(model).copied()
    }
}

#[tokio::test(start_paused = true)]
async fn first_choices_over_10_000_seeded_draws_match_the_weights() {
    let mock = MockProvider::new();
    let mut service = layer([(A, 0.5), (B, 0.3), (C, 0.2)], 42).layer(mock.clone());
    let n = 10_000;

    let mut counts = HashMap::new();
    for _ in 0..n {
        let response = send(&mut service, request("gpt-4o")).await.unwrap();
        *counts.entry(response.model().to_owned()).or_insert(0) += 1;
    }

    assert_eq!(
        mock.calls().len(),
        n,
        "one call per request when all succeed"
    );
    for (model, weight) in [(A, 0.5), (B, 0.3), (C, 0.2)] {
        let got = share(&counts, model, n);
        assert!((got - weight).abs() < 0.02, "{model}: {got} vs {weight}");
    }
}

#[tokio::test(start_paused = true)]
async fn redraws_follow_the_renormalised_remaining_weights_and_never_repeat() {
    let mock = MockProvider::new();
    for m in [A, B, C] {
        mock.always(m, MockReply::error(ErrorKind::Server));
    }
    let mut service = layer([(A, 0.5), (B, 0.3), (C, 0.2)], 7).layer(mock.clone());

    // Second choices after A was drawn first (and failed).
    let mut after_a = HashMap::new();
    let mut firsts = 0;
    for _ in 0..10_000 {
        let e = send(&mut service, request("gpt-4o")).await.unwrap_err();
        let order: Vec<_> = e.attempts().iter().map(|a| a.model.clone()).collect();
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(sorted, [C, A, B], "each candidate exactly once");
        assert_eq!(e.candidates_failed(), 3);
        if order[0] == A {
            firsts += 1;
            *after_a.entry(order[1].clone()).or_insert(0) += 1;
        }
    }

    // Remaining weights 0.3 / 0.2 renormalise to 0.6 / 0.4.
    assert!(
        (4_500..5_500).contains(&firsts),
        "A first about half the time: {firsts}"
    );
    assert!(
        (share(&after_a, B, firsts) - 0.6).abs() < 0.02,
        "{after_a:?}"
    );
    assert!(
        (share(&after_a, C, firsts) - 0.4).abs() < 0.02,
        "{after_a:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn zero_weight_candidates_are_only_used_when_named() {
    let mock = MockProvider::new();
    mock.always(A, MockReply::error(ErrorKind::Server));
    let mut service = WeightedBalanceLayer::builder()
        .route("gpt-4o", [(A, 1.0), (Z, 0.0)])
        .rng(SharedRng::seeded(1))
        .build()
        .unwrap()
        .layer(mock.clone());

    for _ in 0..200 {
        let e = send(&mut service, request("gpt-4o")).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Server);
    }
    assert_eq!(mock.call_count(Z), 0);

    let response = send(&mut service, request(Z)).await.unwrap();
    assert_eq!(response.model(), Z);
}

#[tokio::test(start_paused = true)]
async fn a_named_candidate_goes_first_then_the_draws() {
    let mock = MockProvider::new();
    mock.always(B, MockReply::error(ErrorKind::Timeout));
    let mut service = layer([(A, 0.5), (B, 0.3), (C, 0.2)], 3).layer(mock.clone());

    let mut second = HashMap::new();
    for _ in 0..1_000 {
        let response = send(&mut service, request(B)).await.unwrap();
        *second.entry(response.model().to_owned()).or_insert(0) += 1;
    }

    assert_eq!(
        mock.call_count(B),
        1_000,
        "the named candidate is always tried"
    );
    assert_eq!(mock.calls().len(), 2_000);
    // Then A and C by their weights: 0.5 / 0.7 and 0.2 / 0.7.
    let a = share(&second, A, 1_000);
    assert!((a - 0.714).abs() < 0.05, "{second:?}");
}

#[tokio::test(start_paused = true)]
async fn by_alias_only_a_named_candidate_is_just_that_model() {
    let mock = MockProvider::new();
    mock.always(B, MockReply::error(ErrorKind::Timeout));
    let mut service = WeightedBalanceLayer::builder()
        .route("gpt-4o", [(A, 0.5), (B, 0.3), (C, 0.2)])
        .by_alias_only()
        .rng(SharedRng::seeded(3))
        .build()
        .unwrap()
        .layer(mock.clone());

    let e = send(&mut service, request(B)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout);
    assert_eq!(mock.called_models(), [B]);

    // The alias still draws among all three, B included, and moves past B's
    // timeout to a redraw: each alias call's upstream order is one of these.
    mock.clear_calls();
    let mut firsts = HashMap::new();
    for _ in 0..200 {
        let response = send(&mut service, request("gpt-4o")).await.unwrap();
        let order: Vec<_> = response
            .attempts()
            .iter()
            .map(|a| a.model.as_str())
            .collect();
        assert!(
            matches!(order.as_slice(), [A] | [C] | [B, A] | [B, C]),
            "{order:?}"
        );
        assert_eq!(response.model(), *order.last().unwrap());
        *firsts.entry(order[0].to_owned()).or_insert(0) += 1;
    }
    assert_eq!(firsts.len(), 3, "every candidate drawn first: {firsts:?}");
    assert_eq!(mock.call_count(B), firsts[B], "B called only when drawn");
    assert_eq!(mock.calls().len(), 200 + firsts[B]);
}

#[tokio::test(start_paused = true)]
async fn the_same_sticky_key_gets_the_same_first_choice() {
    let mock = MockProvider::new();
    let mut service = layer([(A, 0.5), (B, 0.3), (C, 0.2)], 11).layer(mock.clone());
    let keyed = |key: &str| {
        let mut req = request("gpt-4o");
        req.extensions_mut().insert(StickyKey::new(key));
        req
    };

    let mut firsts = HashMap::new();
    for user in 0..2_000 {
        let key = format!("user-{user}");
        let first = send(&mut service, keyed(&key))
            .await
            .unwrap()
            .model()
            .to_owned();
        for _ in 0..3 {
            let again = send(&mut service, keyed(&key)).await.unwrap();
            assert_eq!(again.model(), first, "{key}");
        }
        *firsts.entry(first).or_insert(0) += 1;
    }

    // Keys still spread by weight.
    for (model, weight) in [(A, 0.5), (B, 0.3), (C, 0.2)] {
        let got = share(&firsts, model, 2_000);
        assert!((got - weight).abs() < 0.05, "{model}: {got}");
    }
}

#[tokio::test(start_paused = true)]
async fn cooling_candidates_are_not_drawn() {
    let mock = MockProvider::new();
    let health = FakeHealth::default();
    health.cool(A, Duration::from_secs(60));
    let mut service = layer([(A, 0.5), (B, 0.3), (C, 0.2)], 5)
        .with_health(Health::new(health))
        .layer(mock.clone());

    let mut counts = HashMap::new();
    for _ in 0..2_000 {
        let response = send(&mut service, request("gpt-4o")).await.unwrap();
        assert_eq!(
            response.attempts().len(),
            1,
            "no skip to log: A is not drawn"
        );
        *counts.entry(response.model().to_owned()).or_insert(0) += 1;
    }

    assert_eq!(mock.call_count(A), 0);
    assert!((share(&counts, B, 2_000) - 0.6).abs() < 0.04, "{counts:?}");
}

#[tokio::test(start_paused = true)]
async fn when_every_candidate_cools_the_earliest_ending_one_is_forced() {
    let health = FakeHealth::default();
    health.cool(A, Duration::from_secs(9));
    health.cool(B, Duration::from_secs(3));
    health.cool(C, Duration::from_secs(6));
    let mock = MockProvider::new();
    let forced = Arc::new(Mutex::new(Vec::new()));
    let seen = forced.clone();
    let inner = service_fn(move |req: ChatRequest| {
        let force = req.extensions().get::<ForceAttempt>().is_some();
        seen.lock().unwrap().push((req.model().to_owned(), force));
        mock.clone().oneshot(req)
    });
    let mut service = layer([(A, 0.5), (B, 0.3), (C, 0.2)], 5)
        .with_health(Health::new(health))
        .layer(inner);

    let response = send(&mut service, request("gpt-4o")).await.unwrap();

    assert_eq!(response.model(), B);
    assert_eq!(*forced.lock().unwrap(), [(B.to_owned(), true)]);
    assert_eq!(
        response.attempts().iter().filter(|a| !a.upstream).count(),
        3
    );
}

#[tokio::test(start_paused = true)]
async fn non_fallback_kinds_do_not_redraw() {
    let mock = MockProvider::new();
    for m in [A, B, C] {
        mock.always(m, MockReply::error(ErrorKind::BadRequest));
    }
    let mut service = layer([(A, 0.5), (B, 0.3), (C, 0.2)], 9).layer(mock.clone());

    let e = send(&mut service, request("gpt-4o")).await.unwrap_err();

    assert_eq!(e.kind(), ErrorKind::BadRequest);
    assert_eq!(mock.calls().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn requests_for_other_models_pass_through_unchanged() {
    let mock = MockProvider::new();
    let mut service = layer([(A, 0.5), (B, 0.3), (C, 0.2)], 9).layer(mock.clone());

    let response = send(&mut service, request("groq/llama-3.1-8b"))
        .await
        .unwrap();

    assert_eq!(mock.called_models(), ["groq/llama-3.1-8b"]);
    assert_eq!(response.model(), "groq/llama-3.1-8b");
    assert!(
        response.attempts().is_empty(),
        "nothing routed, nothing logged here"
    );
}

#[test]
fn invalid_routes_are_rejected_at_build_naming_the_bad_value() {
    // (candidates, path of the problem, what it says)
    type Case = (Vec<(&'static str, f64)>, &'static str, &'static str);
    let cases: Vec<Case> = vec![
        (
            vec![(A, -0.5), (B, 1.0)],
            "routes.r.azure/gpt-4o",
            "weight -0.5 is negative",
        ),
        (
            vec![(A, f64::NAN), (B, 1.0)],
            "routes.r.azure/gpt-4o",
            "weight NaN is not a finite number",
        ),
        (
            vec![(A, f64::INFINITY)],
            "routes.r.azure/gpt-4o",
            "weight inf is not a finite number",
        ),
        (vec![(A, 0.0), (B, 0.0)], "routes.r", "every weight is zero"),
        (vec![], "routes.r", "no candidate"),
        (
            vec![("gpt-4o", 1.0)],
            "routes.r.gpt-4o",
            "\"gpt-4o\" is not of the form",
        ),
        (
            vec![(A, 1.0), (A, 2.0)],
            "routes.r.azure/gpt-4o",
            "listed twice",
        ),
    ];
    for (candidates, path, message) in cases {
        let e = WeightedBalanceLayer::builder()
            .route("r", candidates.clone())
            .build()
            .unwrap_err();
        let p = &e.problems()[0];
        assert_eq!(p.path, path, "{candidates:?}: {e}");
        assert!(p.message.contains(message), "{candidates:?}: {e}");
    }

    let e = WeightedBalanceLayer::builder()
        .route("r", [(A, 1.0)])
        .route(B, [(B, 1.0), (C, 1.0)])
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("also a candidate"), "{e}");
}

#[tokio::test(start_paused = true)]
async fn routes_come_from_a_map_or_a_list_in_config() {
    let config: BalanceConfig = serde_json::from_value(serde_json::json!({
        "routes": {
            "map": {A: 0.0, B: 1.0},
            "list": [{"model": C, "weight": 0.0}, A]
        },
        "seed": 1
    }))
    .unwrap();
    let mock = MockProvider::new();
    let mut service = WeightedBalanceLayer::from_config(&config)
        .unwrap()
        .layer(mock.clone());

    assert_eq!(send(&mut service, request("map")).await.unwrap().model(), B);
    assert_eq!(
        send(&mut service, request("list")).await.unwrap().model(),
        A
    );

    let bad: BalanceConfig =
        serde_json::from_value(serde_json::json!({"routes": {"r": {A: -1.0}}})).unwrap();
    let e = WeightedBalanceLayer::from_config(&bad).unwrap_err();
    assert_eq!(e.problems()[0].path, "routes.r.azure/gpt-4o");
}
