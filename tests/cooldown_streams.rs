//! Cooldown and streams: a committed stream is judged when it ends, so a
//! stream cut after its first token counts toward the breaker.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use llm_fallback::layers::cooldown::{Admission, BreakerSettings, Permit, Transition, Verdict};
use llm_fallback::layers::cooldown::{CooldownStore, InMemoryStore};
use llm_fallback::layers::health::{AllCooling, HealthView};
use llm_fallback::mock::{MockProvider, MockReply};
use llm_fallback::store::StoreFuture;
use llm_fallback::{ChatError, ChatRequest, ChatResponse, CooldownLayer, ErrorKind, Message};
use tokio::time::Instant;
use tower::{Service, ServiceBuilder, ServiceExt};

const AZURE: &str = "azure/gpt-4o";

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn cut() -> MockReply {
    MockReply::stream_cut("the answer is forty two", 1)
}

/// Two consecutive failures trip; open for 10 s. A model requested
/// directly fails fast while it cools (the default would force one call).
fn layer() -> CooldownLayer {
    CooldownLayer::builder()
        .when_all_cooling(AllCooling::FailFast)
        .consecutive_failures(2)
        .without_failure_ratio()
        .cooldown(secs(10))
        .build()
        .unwrap()
}

fn stack(
    layer: &CooldownLayer,
    mock: &MockProvider,
) -> impl Service<ChatRequest, Response = ChatResponse, Error = ChatError> + Clone {
    ServiceBuilder::new()
        .layer(layer.clone())
        .service(mock.clone())
}

async fn open<S>(service: &S) -> Result<ChatResponse, ChatError>
where
    S: Service<ChatRequest, Response = ChatResponse, Error = ChatError> + Clone,
{
    let request = ChatRequest::new(AZURE, [Message::user("hello")]).with_stream(true);
    service.clone().oneshot(request).await
}

/// Calls and reads the whole stream: its text, or the error that ended it.
async fn streamed<S>(service: &S) -> Result<String, ChatError>
where
    S: Service<ChatRequest, Response = ChatResponse, Error = ChatError> + Clone,
{
    let response = open(service).await?;
    let completion = response.into_stream().unwrap().collect_completion().await?;
    Ok(completion.choices[0].message.text())
}

#[tokio::test(start_paused = true)]
async fn streams_cut_after_their_first_token_count_and_open_the_breaker() {
    let mock = MockProvider::new();
    mock.always(AZURE, cut());
    let layer = layer();
    let service = stack(&layer, &mock);

    for _ in 0..2 {
        let error = streamed(&service).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::StreamInterrupted);
    }
    assert!(!layer.health().is_available(AZURE));
    let error = open(&service).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::CoolingDown);
    assert_eq!(mock.call_count(AZURE), 2);
}

#[tokio::test(start_paused = true)]
async fn a_stream_that_completes_is_a_success_and_resets_the_count() {
    let mock = MockProvider::new();
    mock.script(
        AZURE,
        [
            cut(),
            MockReply::text("all good here"),
            cut(),
            MockReply::text("still fine"),
        ],
    );
    let layer = layer();
    let service = stack(&layer, &mock);

    assert!(streamed(&service).await.is_err());
    assert_eq!(streamed(&service).await.unwrap(), "all good here");
    // One failure since the success: still closed.
    assert!(streamed(&service).await.is_err());
    assert!(layer.health().is_available(AZURE));
    assert_eq!(streamed(&service).await.unwrap(), "still fine");
    assert_eq!(mock.call_count(AZURE), 4);
}

#[tokio::test(start_paused = true)]
async fn a_committed_stream_counts_only_once_it_ends() {
    let mock = MockProvider::new();
    mock.always(AZURE, cut());
    let layer = layer();
    let service = stack(&layer, &mock);

    assert!(streamed(&service).await.is_err());
    // The second cut stream has committed but not yet failed: still closed.
    let mut stream = open(&service).await.unwrap().into_stream().unwrap();
    assert!(stream.next().await.unwrap().is_ok());
    assert!(layer.health().is_available(AZURE));
    while let Some(item) = stream.next().await {
        if item.is_err() {
            break;
        }
    }
    assert!(!layer.health().is_available(AZURE));
}

/// Trips the breaker with two cut streams and waits out the cooldown.
async fn half_open<S>(service: &S, layer: &CooldownLayer)
where
    S: Service<ChatRequest, Response = ChatResponse, Error = ChatError> + Clone,
{
    for _ in 0..2 {
        assert!(streamed(service).await.is_err());
    }
    assert!(!layer.health().is_available(AZURE));
    tokio::time::advance(secs(10)).await;
}

#[tokio::test(start_paused = true)]
async fn a_probe_whose_stream_is_cut_reopens_the_breaker() {
    let mock = MockProvider::new();
    mock.always(AZURE, cut());
    let layer = layer();
    let service = stack(&layer, &mock);
    half_open(&service, &layer).await;

    let mut probe = open(&service).await.unwrap().into_stream().unwrap();
    // While the probe streams, others are refused.
    let error = open(&service).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::CoolingDown);
    while probe.next().await.is_some_and(|item| item.is_ok()) {}

    let reopened = Instant::now();
    let error = open(&service).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::CoolingDown);
    assert_eq!(error.cooling_until(), Some(reopened + secs(10)));
    assert_eq!(mock.call_count(AZURE), 3);
}

#[tokio::test(start_paused = true)]
async fn a_probe_whose_stream_completes_closes_the_breaker() {
    let mock = MockProvider::new();
    mock.script(AZURE, [cut(), cut(), MockReply::text("back again")]);
    mock.always(AZURE, MockReply::text("fine"));
    let layer = layer();
    let service = stack(&layer, &mock);
    half_open(&service, &layer).await;

    let mut probe = open(&service).await.unwrap().into_stream().unwrap();
    assert!(probe.next().await.unwrap().is_ok());
    // Committed is not finished: the probe still holds the slot.
    assert_eq!(
        open(&service).await.unwrap_err().kind(),
        ErrorKind::CoolingDown
    );
    while probe.next().await.is_some() {}

    assert!(layer.health().is_available(AZURE));
    assert_eq!(streamed(&service).await.unwrap(), "fine");
    assert_eq!(mock.call_count(AZURE), 4);
}

#[tokio::test(start_paused = true)]
async fn a_probe_stream_dropped_midway_frees_the_slot_for_the_next_call() {
    let mock = MockProvider::new();
    mock.script(
        AZURE,
        [cut(), cut(), MockReply::text("never read to the end")],
    );
    mock.always(AZURE, MockReply::text("fine"));
    let layer = layer();
    let service = stack(&layer, &mock);
    half_open(&service, &layer).await;

    let mut probe = open(&service).await.unwrap().into_stream().unwrap();
    assert!(probe.next().await.unwrap().is_ok());
    drop(probe);

    // The next call is the new probe, and its complete stream closes the breaker.
    assert_eq!(streamed(&service).await.unwrap(), "fine");
    assert!(layer.health().is_available(AZURE));
    assert_eq!(mock.call_count(AZURE), 4);
}

/// A store that applies a verdict only after a network round trip.
struct Remote(Arc<InMemoryStore>);

impl HealthView for Remote {
    fn cooling_until(&self, model: &str) -> Option<Instant> {
        self.0.cooling_until(model)
    }
}

impl CooldownStore for Remote {
    fn admit(&self, model: &str, force: bool, now: Instant) -> StoreFuture<Admission> {
        self.0.admit(model, force, now)
    }

    fn record(
        &self,
        model: &str,
        permit: Permit,
        verdict: Verdict,
        settings: &BreakerSettings,
        _now: Instant,
    ) -> StoreFuture<Transition> {
        let (store, model, settings) = (self.0.clone(), model.to_owned(), *settings);
        StoreFuture::boxed(async move {
            tokio::time::sleep(Duration::from_millis(2)).await;
            let now = Instant::now();
            store.record(&model, permit, verdict, &settings, now).await
        })
    }

    fn release(&self, model: &str, permit: Permit) {
        self.0.release(model, permit);
    }
}

#[tokio::test(start_paused = true)]
async fn a_stream_verdict_for_a_store_that_answers_later_is_recorded_in_the_background() {
    let mock = MockProvider::new();
    mock.always(AZURE, cut());
    let layer = CooldownLayer::builder()
        .when_all_cooling(AllCooling::FailFast)
        .consecutive_failures(2)
        .without_failure_ratio()
        .store(Arc::new(Remote(Arc::new(InMemoryStore::new()))))
        .build()
        .unwrap();
    let service = stack(&layer, &mock);

    for _ in 0..2 {
        assert!(streamed(&service).await.is_err());
    }
    // The stream ended; the store's round trip is still under way.
    assert!(layer.health().is_available(AZURE));
    tokio::time::sleep(Duration::from_millis(3)).await;
    assert!(!layer.health().is_available(AZURE));
    assert_eq!(
        open(&service).await.unwrap_err().kind(),
        ErrorKind::CoolingDown
    );
    assert_eq!(mock.call_count(AZURE), 2);
}
