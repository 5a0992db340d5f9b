//! The breaker on Redis (a Lua script) makes the same decisions as the
//! in-memory one (breaker.rs): one scenario through the `CooldownStore`
//! contract, run against both, must give the same answers.
//!
//! Real time, against the real Redis on 127.0.0.1:6379.

mod redis_support;

use std::collections::HashMap;
use std::time::Duration;

use llm_fallback::layers::cooldown::{
    Admission, BreakerSettings, FailureRatio, Growth, Permit, PermitKind, RedisStore, Transition,
    Verdict,
};
use llm_fallback::layers::cooldown::{CooldownStore, InMemoryStore};
use redis_support::{
    breaker_admits, cleanup, connect, hget, poll_until, server_ms, unique_prefix, window_calls,
    REDIS,
};
use tokio::time::Instant;

const A: &str = "azure/gpt-4o";
const B: &str = "openai/gpt-4o";

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A duration to the nearest 50 ms, so both stores' clocks may differ a little.
fn rounded(d: Duration) -> u128 {
    (d.as_millis() + 25) / 50 * 50
}

/// Runs the scenario, describing every answer.
struct Run<'a> {
    store: &'a dyn CooldownStore,
    /// The Redis store's key prefix, to wait on what it writes.
    redis: Option<&'a str>,
    /// Per model, the calls its failure-ratio window has counted so far.
    window: HashMap<String, u64>,
    log: Vec<String>,
}

impl Run<'_> {
    async fn admit(&mut self, model: &str, force: bool) -> Option<Permit> {
        let answer = self.store.admit(model, force, Instant::now()).await;
        let (line, permit) = match answer {
            Admission::Admit(permit) => (format!("admit {:?}", permit.kind), Some(permit)),
            // How long is left depends on how fast the machine ran the
            // steps before; the decision is what the stores must agree on.
            Admission::Refuse { .. } => ("refuse".to_owned(), None),
        };
        self.log.push(format!("{model}: {line}"));
        permit
    }

    async fn record(&mut self, model: &str, permit: Permit, verdict: Verdict, s: &BreakerSettings) {
        let transition = self
            .store
            .record(model, permit, verdict, s, Instant::now())
            .await;
        let reset = !matches!(transition, Transition::Unchanged);
        self.log.push(match transition {
            Transition::Unchanged => format!("{model}: {verdict:?} unchanged"),
            Transition::Closed => format!("{model}: {verdict:?} closed"),
            // A forced call extends the open time by the time that has passed
            // since it opened: how fast the machine ran, not a decision.
            Transition::Opened { .. } if permit.kind == PermitKind::Forced => {
                format!("{model}: {verdict:?} extended")
            }
            Transition::Opened { cooldown, .. } => {
                format!("{model}: {verdict:?} opened {}ms", rounded(cooldown))
            }
        });
        if permit.kind == PermitKind::Normal && s.failure_ratio.is_some() {
            self.counted(model, reset, verdict == Verdict::Success)
                .await;
        }
        let cooling = self
            .store
            .cooling_until(model)
            .is_some_and(|u| u > Instant::now());
        self.log.push(format!("{model}: cooling {cooling}"));
    }

    /// Counts a call in `model`'s window (emptied when the breaker changed
    /// state); for a success, written in the background, waits until
    /// Redis's window holds it.
    async fn counted(&mut self, model: &str, reset: bool, success: bool) {
        let n = self.window.entry(model.to_owned()).or_insert(0);
        *n = if reset { 0 } else { *n + 1 };
        let (n, Some(prefix), true) = (*n, self.redis, success) else {
            return;
        };
        let key = format!("{prefix}:cb:{model}");
        poll_until("the window counts every call", async || {
            window_calls(&key).await == n
        })
        .await;
    }

    /// Waits until `model`'s open time is over, in the local view and,
    /// for Redis, by the server's clock.
    async fn until_admitted(&self, model: &str) {
        let key = self.redis.map(|prefix| format!("{prefix}:cb:{model}"));
        poll_until("the open time is over", async || {
            let over = |u| u <= Instant::now();
            let local = self.store.cooling_until(model).is_none_or(over);
            let remote = match &key {
                Some(key) => breaker_admits(key).await,
                None => true,
            };
            local && remote
        })
        .await;
    }

    /// Waits until Redis's clock (in ms, where the local one counts in ns)
    /// has moved on, so that what happens next is later.
    async fn tick(&self) {
        if self.redis.is_some() {
            let now = server_ms().await;
            poll_until("the server's clock ticks", async || server_ms().await > now).await;
        }
    }

    /// Waits until a released probe's slot is free again in Redis.
    async fn until_released(&self, model: &str) {
        let Some(prefix) = self.redis else {
            return;
        };
        let key = format!("{prefix}:cb:{model}");
        poll_until("the probe slot is released", async || {
            hget(&key, "s").await.as_deref() != Some("p")
        })
        .await;
    }
}

async fn scenario(store: &dyn CooldownStore, redis: Option<&str>) -> Vec<String> {
    let mut run = Run {
        store,
        redis,
        window: HashMap::new(),
        log: Vec::new(),
    };
    let s = BreakerSettings {
        consecutive_failures: 2,
        failure_ratio: None,
        cooldown: ms(150),
        growth: Some(Growth {
            factor: 2.0,
            max: ms(1000),
        }),
    };
    // Two consecutive failures open it.
    let first = run.admit(A, false).await.unwrap();
    run.record(A, first, Verdict::Failure, &s).await;
    let p = run.admit(A, false).await.unwrap();
    run.record(A, p, Verdict::Failure, &s).await;
    run.tick().await;
    assert!(run.admit(A, false).await.is_none());
    // A forced call's failure keeps it open a cooldown longer.
    let forced = run.admit(A, true).await.unwrap();
    run.record(A, forced, Verdict::Failure, &s).await;
    // Half-open: one probe; its failure reopens for twice as long.
    run.until_admitted(A).await;
    let probe = run.admit(A, false).await.unwrap();
    run.admit(A, false).await;
    run.record(A, probe, Verdict::Failure, &s).await;
    // A cancelled probe frees the slot; the next probe's success closes.
    run.until_admitted(A).await;
    let cancelled = run.admit(A, false).await.unwrap();
    run.store.release(A, cancelled);
    run.until_released(A).await;
    let probe = run.admit(A, false).await.unwrap();
    run.record(A, probe, Verdict::Success, &s).await;
    // An outcome from before the last change is stale.
    run.admit(A, false).await;
    run.record(A, first, Verdict::Failure, &s).await;
    // A trip for the provider's time; a stale trip may still extend it.
    let p = run.admit(A, false).await.unwrap();
    run.record(A, p, Verdict::Trip(Some(ms(250))), &s).await;
    run.record(A, first, Verdict::Trip(Some(ms(400))), &s).await;
    // A probe whose outcome says nothing frees the slot.
    run.until_admitted(A).await;
    let probe = run.admit(A, false).await.unwrap();
    run.record(A, probe, Verdict::Ignore, &s).await;
    let probe = run.admit(A, false).await.unwrap();
    run.record(A, probe, Verdict::Success, &s).await;

    // The failure ratio: half of four calls in the window.
    let ratio = BreakerSettings {
        consecutive_failures: 0,
        failure_ratio: Some(FailureRatio::new(0.5, Duration::from_secs(2), 4)),
        ..s
    };
    for verdict in [
        Verdict::Success,
        Verdict::Failure,
        Verdict::Success,
        Verdict::Failure,
    ] {
        let p = run.admit(B, false).await.unwrap();
        run.record(B, p, verdict, &ratio).await;
    }
    run.log
}

#[tokio::test]
async fn the_redis_breaker_answers_as_the_in_memory_breaker_does() {
    let prefix = unique_prefix("parity");
    let connection = connect(REDIS, &prefix, ms(1000)).await;
    let (memory, redis) = tokio::join!(
        async { scenario(&InMemoryStore::new(), None).await },
        async { scenario(&RedisStore::new(&connection), Some(&prefix)).await },
    );
    assert!(
        memory.contains(&format!("{A}: Failure opened 300ms")),
        "{memory:#?}"
    );
    assert!(
        memory.contains(&format!("{B}: Failure opened 150ms")),
        "{memory:#?}"
    );
    assert_eq!(memory, redis);

    cleanup(&prefix).await;
}
