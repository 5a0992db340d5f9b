//! One request's walk over the keys: each key tried at most once, its own failures cooling it alone.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tower::ServiceExt;
use tower_service::Service;
use tracing::Instrument;

use super::policy::Judgement;
use super::Shared;
use crate::chat::{AttemptLog, ChatError, ChatRequest, ChatResponse, ErrorKind, LogScope};
use crate::layers::cooldown::{
    Admission, BreakerSettings, CooldownStore, Permit, PermitKind, Transition, Verdict,
};
use crate::layers::health::ForceAttempt;

/// Serves `request` with the first key that does not fail on its own account.
pub(super) async fn rotate<S>(
    shared: Arc<Shared<S>>,
    mut request: ChatRequest,
) -> Result<ChatResponse, ChatError>
where
    S: Service<ChatRequest, Response = ChatResponse, Error = ChatError>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    let log = AttemptLog::enter(&mut request);
    let before = log.len();
    let model = format!("{}/{}", shared.provider, request.model());
    let force = request.extensions().get::<ForceAttempt>().is_some();
    let mut plan = shared.plan(Instant::now());
    let mut tried = 0;
    let mut last: Option<(ChatError, usize)> = None;
    for i in std::mem::take(&mut plan.order) {
        let id = &shared.meta[i].id;
        let permit = match shared.store.admit(id, false, Instant::now()).await {
            Admission::Admit(permit) => permit,
            Admission::Refuse { until } => {
                tracing::trace!(
                    provider = &*shared.provider,
                    key = &*shared.meta[i].label,
                    "key cooling down: skipped"
                );
                plan.cooling(i, until);
                continue;
            }
        };
        tried += 1;
        if last.is_some() {
            // The previous key's failure moved this call on: a rotation,
            // not one of the call's capped attempts.
            let previous = log.len().saturating_sub(1);
            log.amend(previous, |a| a.rotated = true);
        }
        match try_key(&shared, i, permit, &request, &log, &model).await {
            (Err(e), Rotate::Next) => last = Some((e, i)),
            (result, _) => return attached(&log, result),
        }
    }
    if let Some((e, i)) = last {
        return attached(&log, Err(exhausted(&shared, e, i, tried)));
    }
    // Every key is cooling down: a routing layer that found every candidate
    // cooling forces the one back first, rather than failing without a call.
    let (i, until) = plan.earliest.unwrap_or((0, Instant::now()));
    if force {
        if let Admission::Admit(permit) = shared
            .store
            .admit(&shared.meta[i].id, true, Instant::now())
            .await
        {
            let result = match try_key(&shared, i, permit, &request, &log, &model).await {
                (Err(e), Rotate::Next) => Err(exhausted(&shared, e, i, 1)),
                (result, _) => result,
            };
            return attached(&log, result);
        }
    }
    let mut e = ChatError::cooling_down(model.as_str(), until);
    let left = until.saturating_duration_since(Instant::now());
    e.set_message(format!(
        "every key of {} is cooling down; the first is back in {left:?}",
        shared.provider
    ));
    let result = Err(e);
    log.record_if_missing(before, &model, &result, Duration::ZERO);
    attached(&log, result)
}

/// Whether a key try's failure was the key's own.
#[derive(PartialEq, Eq)]
enum Rotate {
    /// Served, or failed in a way that is not the key's: the request's outcome.
    Stop,
    /// The key's own failure: try the next key.
    Next,
}

/// Calls key `i` with `permit`, logs the attempt under the key's label, and
/// tells the store what the outcome says about the key.
async fn try_key<S>(
    shared: &Shared<S>,
    i: usize,
    permit: Permit,
    request: &ChatRequest,
    log: &LogScope,
    model: &str,
) -> (Result<ChatResponse, ChatError>, Rotate)
where
    S: Service<ChatRequest, Response = ChatResponse, Error = ChatError>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    let key = &shared.meta[i];
    let mut guard = ProbeGuard {
        store: shared.store.as_ref(),
        id: &key.id,
        permit: Some(permit),
    };
    let span = tracing::debug_span!("key", provider = &*shared.provider, key = &*key.label);
    let before = log.len();
    let started = Instant::now();
    let call = shared.services[i].clone().oneshot(request.clone());
    let result = call.instrument(span).await;
    let latency = started.elapsed();
    log.record_if_missing(before, model, &result, latency);
    log.label_key_since(before, &key.label);
    let judgement = shared.policy.judge(&result);
    let (verdict, rest) = match (&judgement, &result) {
        (Judgement::Rotate(rest), _) => (Verdict::Trip(Some(*rest)), *rest),
        (Judgement::Keep, Ok(_)) => (Verdict::Success, Duration::ZERO),
        (Judgement::Keep, Err(_)) => (Verdict::Ignore, Duration::ZERO),
    };
    let outcome = match &result {
        Ok(_) => "ok",
        Err(e) => e.kind().as_str(),
    };
    tracing::debug!(
        provider = &*shared.provider,
        key = &*key.label,
        model,
        outcome,
        latency_ms = latency.as_millis() as u64,
        "key attempt"
    );
    // A closed breaker learns nothing from a success or an ignored failure:
    // skip the store (a round trip for a remote one) unless it trips.
    if matches!(verdict, Verdict::Trip(_)) || permit.kind != PermitKind::Normal {
        let settings = BreakerSettings {
            consecutive_failures: 0,
            failure_ratio: None,
            cooldown: rest.max(Duration::from_millis(1)),
            growth: None,
        };
        guard.permit = None;
        let transition = shared
            .store
            .record(&key.id, permit, verdict, &settings, Instant::now())
            .await;
        match transition {
            Transition::Opened { cooldown, .. } => tracing::warn!(
                provider = &*shared.provider,
                key = &*key.label,
                kind = outcome,
                cooldown_ms = cooldown.as_millis() as u64,
                "key cooling down"
            ),
            Transition::Closed => {
                tracing::info!(
                    provider = &*shared.provider,
                    key = &*key.label,
                    "key back in use"
                )
            }
            Transition::Unchanged => {}
        }
    }
    guard.permit = None;
    match judgement {
        Judgement::Rotate(_) => (result, Rotate::Next),
        Judgement::Keep => (result, Rotate::Stop),
    }
}

/// The last key's error, kind kept, once no key is left. A rate limit's
/// `Retry-After` becomes the time until the first key is back, so a `Retry`
/// above waits for that key rather than failing on a cooling provider.
fn exhausted<S>(shared: &Shared<S>, mut e: ChatError, last: usize, tried: usize) -> ChatError {
    let now = Instant::now();
    let back = (shared.meta.iter())
        .filter_map(|k| shared.store.cooling_until(&k.id))
        .min();
    if e.kind() == ErrorKind::RateLimited {
        if let Some(back) = back.filter(|b| *b > now) {
            e = e.with_retry_after(back - now);
        }
    }
    if tried > 1 {
        let message = format!(
            "{} ({tried} keys tried, the last was {:?})",
            e.message(),
            shared.meta[last].label
        );
        e.set_message(message);
    }
    e
}

fn attached(
    log: &LogScope,
    mut result: Result<ChatResponse, ChatError>,
) -> Result<ChatResponse, ChatError> {
    log.attach(&mut result);
    result
}

/// Frees a half-open probe's slot if the request is dropped mid-call.
struct ProbeGuard<'a> {
    store: &'a dyn CooldownStore,
    id: &'a str,
    permit: Option<Permit>,
}

impl Drop for ProbeGuard<'_> {
    fn drop(&mut self) {
        if let Some(permit) = self.permit.filter(|p| p.kind == PermitKind::Probe) {
            self.store.release(self.id, permit);
        }
    }
}
