//! Cooling candidates: skipped without a call, the earliest-ending one
//! forced when all cool, refusals from below.

use super::*;

/// A health view the test sets by hand.
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

/// Each call's model, and whether it was forced.
type Seen = Arc<Mutex<Vec<(String, bool)>>>;

/// The mock, behind a spy noting each call it receives.
fn spy(
    mock: MockProvider,
) -> (
    impl Service<ChatRequest, Response = ChatResponse, Error = ChatError, Future: Send>
        + Clone
        + Send
        + 'static,
    Seen,
) {
    let seen = Seen::default();
    let log = seen.clone();
    let svc = service_fn(move |req: ChatRequest| {
        let forced = req.extensions().get::<ForceAttempt>().is_some();
        log.lock().unwrap().push((req.model().to_owned(), forced));
        mock.clone().oneshot(req)
    });
    (svc, seen)
}

#[tokio::test(start_paused = true)]
async fn cooling_candidates_are_skipped_without_a_call_and_not_counted() {
    let mock = MockProvider::new();
    failing(&mock, OPENAI, ErrorKind::Server);
    let health = FakeHealth::default();
    health.cool(AZURE, Duration::from_secs(10));
    let layer = ProviderFallbackLayer::builder()
        .group([AZURE, OPENAI, GROQ])
        .options(RouteOptions::new().max_fallbacks(1))
        .build()
        .unwrap()
        .with_health(Health::new(health));

    let response = send(&layer, mock.clone(), AZURE).await.unwrap();

    assert_eq!(mock.called_models(), [OPENAI, GROQ]);
    assert_eq!(response.model(), GROQ);
    let attempts = response.attempts();
    assert_eq!(attempts.len(), 3);
    assert_eq!(attempts[0].model, AZURE);
    assert_eq!(attempts[0].error, Some(ErrorKind::CoolingDown));
    assert!(!attempts[0].upstream);
    assert!(attempts[1].upstream && attempts[2].upstream);
}

#[tokio::test(start_paused = true)]
async fn when_every_candidate_cools_the_earliest_ending_one_is_called_with_force_attempt() {
    let mock = MockProvider::new();
    let health = FakeHealth::default();
    health.cool(AZURE, Duration::from_secs(30));
    health.cool(OPENAI, Duration::from_secs(5));
    health.cool(GROQ, Duration::from_secs(20));
    let layer = ProviderFallbackLayer::builder()
        .group([AZURE, OPENAI, GROQ])
        .health(Health::new(health))
        .build()
        .unwrap();
    let (inner, seen) = spy(mock.clone());

    let response = send(&layer, inner, AZURE).await.unwrap();

    assert_eq!(*seen.lock().unwrap(), [(OPENAI.to_owned(), true)]);
    assert_eq!(response.model(), OPENAI);
    let skips = response.attempts().iter().filter(|a| !a.upstream).count();
    assert_eq!(skips, 3);
}

#[tokio::test(start_paused = true)]
async fn a_cooling_down_refusal_from_below_moves_on_without_counting() {
    // No health view: the Cooldown layer below refuses instead.
    let mock = MockProvider::new();
    mock.always(AZURE, MockReply::error(ErrorKind::CoolingDown));
    let layer = ProviderFallbackLayer::builder()
        .group([AZURE, OPENAI])
        .options(RouteOptions::new().max_fallbacks(0))
        .build()
        .unwrap();

    let response = send(&layer, mock.clone(), AZURE).await.unwrap();

    assert_eq!(mock.called_models(), [AZURE, OPENAI]);
    assert_eq!(response.model(), OPENAI);
}
