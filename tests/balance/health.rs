//! Cooling candidates are not drawn; when all cool, the earliest-ending
//! one is forced.

use super::*;

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
