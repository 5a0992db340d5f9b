//! A cooldown store that answers later (like a remote one) is awaited
//! before the call and after the outcome.

use super::*;

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
