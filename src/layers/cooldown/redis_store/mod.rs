//! Breakers on Redis, shared by every process that points at the same server and prefix.

mod local;
mod release;
mod script;

use std::fmt;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use self::release::{ProbeGuard, Unreleased};
use self::script::{millis, ms, record_args, ProbeIds, Reply, SCRIPT};
use super::memory::InMemoryStore;
use super::policy::{BreakerSettings, Verdict};
use super::store::{Admission, CooldownStore, Permit, PermitKind, Transition};
use crate::chat::ConfigError;
use crate::clamp::after;
use crate::layers::health::HealthView;
use crate::store::{Link, RedisConnection, StoreFuture};

/// Marks a permit granted by the local view (during an outage) rather than by Redis.
const LOCAL: u64 = 1 << 63;

/// A [`CooldownStore`] on Redis: a breaker tripped by one process is open for
/// all of them, and a half-open breaker admits exactly one probe among them.
///
/// Each model's breaker is one hash, `<prefix>:cb:<model>`, changed only by
/// a Lua script (atomic, on the server's clock, so processes need not agree
/// on the time). Every key expires: an open breaker when its open time and
/// then [`key_ttl`](RedisStoreBuilder::key_ttl) have passed, a closed one
/// `key_ttl` after its last outcome (so a run of failures spread over more
/// than that is forgotten).
///
/// Each operation is bounded by the connection's time budget; when Redis
/// fails or is slow, the store answers from a local [`InMemoryStore`]
/// instead, which mirrors every state Redis reported (so
/// [`cooling_until`](HealthView::cooling_until) stays a local read, and a
/// breaker open on Redis stays open during an outage). Breakers the local
/// view opens during an outage are pushed to Redis when it answers again.
///
/// On the happy path a call costs one round trip before the upstream call
/// (`admit`; about 44 µs over the in-memory store with Redis on the same
/// host, see `docs/PERFORMANCE.md`); the success is written after the
/// response, without waiting.
///
/// A probe slot granted to a call that was cancelled, or whose answer came
/// too late, is released in the background; one held by a process that died
/// is freed when its [lease](RedisStoreBuilder::probe_lease) ends.
///
/// ```no_run
/// use std::sync::Arc;
/// use llm_fallback::layers::cooldown::{CooldownLayer, RedisStore};
/// use llm_fallback::store::RedisConnection;
///
/// let redis = RedisConnection::builder("redis://127.0.0.1:6379").prefix("gw").build().unwrap();
/// let layer = CooldownLayer::builder()
///     .store(Arc::new(RedisStore::new(&redis)))
///     .build()
///     .unwrap();
/// # let _ = layer;
/// ```
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    link: Arc<Link>,
    local: InMemoryStore,
    lease_ms: u64,
    ttl_ms: u64,
    probes: ProbeIds,
    pending: Mutex<Vec<(Box<str>, Instant)>>,
    has_pending: AtomicBool,
    /// Probe releases Redis did not take.
    unreleased: Mutex<Vec<Unreleased>>,
    has_unreleased: AtomicBool,
}

impl RedisStore {
    /// A store on `connection` with the default lease and key TTL.
    pub fn new(connection: &RedisConnection) -> Self {
        Self::builder(connection)
            .build()
            .expect("the default settings are valid")
    }

    /// Starts a builder.
    pub fn builder(connection: &RedisConnection) -> RedisStoreBuilder {
        RedisStoreBuilder {
            connection: connection.clone(),
            probe_lease: Duration::from_secs(60),
            key_ttl: Duration::from_secs(600),
        }
    }
}

/// Builds a [`RedisStore`].
#[derive(Debug)]
pub struct RedisStoreBuilder {
    connection: RedisConnection,
    probe_lease: Duration,
    key_ttl: Duration,
}

impl RedisStoreBuilder {
    /// How long a probe holds the half-open slot at most (default 60 s): a
    /// process that dies mid-probe frees it then. Make it longer than the
    /// slowest call you expect.
    pub fn probe_lease(mut self, lease: Duration) -> Self {
        self.probe_lease = lease;
        self
    }

    /// How long a breaker's key outlives its last change (default 10 min;
    /// never less than the failure-ratio window).
    pub fn key_ttl(mut self, ttl: Duration) -> Self {
        self.key_ttl = ttl;
        self
    }

    /// The store, or every invalid setting.
    pub fn build(self) -> Result<RedisStore, ConfigError> {
        let mut errors = ConfigError::default();
        if self.probe_lease < Duration::from_millis(1) {
            errors.push("store.probe_lease", "must be at least 1 ms");
        }
        if self.key_ttl < Duration::from_millis(1) {
            errors.push("store.key_ttl", "must be at least 1 ms");
        }
        errors.into_result(RedisStore {
            inner: Arc::new(Inner {
                link: self.connection.link,
                local: InMemoryStore::new(),
                lease_ms: ms(self.probe_lease),
                ttl_ms: ms(self.key_ttl),
                probes: ProbeIds::new(),
                pending: Mutex::new(Vec::new()),
                has_pending: AtomicBool::new(false),
                unreleased: Mutex::new(Vec::new()),
                has_unreleased: AtomicBool::new(false),
            }),
        })
    }
}

impl CooldownStore for RedisStore {
    fn admit(&self, model: &str, force: bool, now: Instant) -> StoreFuture<Admission> {
        let inner = &self.inner;
        if !inner.link.available() {
            return StoreFuture::ready(inner.local_admit(model, force, now));
        }
        let inner = inner.clone();
        let model = model.to_owned();
        let probe = inner.probes.next();
        StoreFuture::boxed(async move {
            // Redis may grant `probe` and this call never learn of it.
            let guard = ProbeGuard::new(&inner, &model, probe);
            let key = inner.link.key("cb", &model);
            let (lease, ttl) = (inner.lease_ms, inner.ttl_ms);
            let reply = inner
                .link
                .run(|mut conn| async move {
                    let mut call = SCRIPT.prepare_invoke();
                    call.key(key).arg("admit").arg(lease).arg(ttl);
                    call.arg(u8::from(force)).arg(probe);
                    call.invoke_async::<Reply>(&mut conn).await
                })
                .await;
            match reply {
                Some(reply) => {
                    guard.disarm();
                    inner.admitted(&model, reply)
                }
                None => {
                    guard.defer();
                    inner.local_admit(&model, force, Instant::now())
                }
            }
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
        let inner = &self.inner;
        if permit.token & LOCAL != 0 {
            let permit = Permit {
                token: permit.token & !LOCAL,
                ..permit
            };
            return StoreFuture::ready(inner.local_record(model, permit, verdict, settings, now));
        }
        if (permit.kind, verdict) == (PermitKind::Normal, Verdict::Ignore) {
            return StoreFuture::ready(Transition::Unchanged);
        }
        if !inner.link.available() {
            if permit.kind == PermitKind::Probe {
                inner.queue_release(model, permit.token);
            }
            return StoreFuture::ready(inner.apply_locally(model, verdict, settings, now));
        }
        // A probe's outcome that never reaches Redis must still free the slot,
        // even when its future is dropped before it is first polled.
        let guard =
            (permit.kind == PermitKind::Probe).then(|| ProbeGuard::new(inner, model, permit.token));
        let (inner, model, settings) = (inner.clone(), model.to_owned(), *settings);
        let write = async move {
            inner
                .record_remote(&model, permit, verdict, settings, guard)
                .await
        };
        // A success on a closed breaker changes no state worth waiting for.
        if (permit.kind, verdict) == (PermitKind::Normal, Verdict::Success) {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(write);
                return StoreFuture::ready(Transition::Unchanged);
            }
        }
        StoreFuture::boxed(write)
    }

    fn release(&self, model: &str, permit: Permit) {
        let inner = &self.inner;
        if permit.token & LOCAL != 0 {
            let permit = Permit {
                token: permit.token & !LOCAL,
                ..permit
            };
            return inner.local.release(model, permit);
        }
        if permit.kind != PermitKind::Probe {
            return;
        }
        // Called from `Drop`: in the background, or once Redis answers again.
        if inner.link.available() {
            inner.release_remote(model, permit.token);
        } else {
            inner.queue_release(model, permit.token);
        }
    }
}

impl HealthView for RedisStore {
    fn cooling_until(&self, model: &str) -> Option<Instant> {
        self.inner.local.cooling_until(model)
    }
}

impl Inner {
    fn admitted(self: &Arc<Self>, model: &str, (what, token, ms, _): Reply) -> Admission {
        self.flush_pending();
        self.flush_unreleased();
        let token = token.parse().unwrap_or(0);
        let until = after(Instant::now(), millis(ms));
        let admit = |kind| Admission::Admit(Permit { kind, token });
        match what.as_str() {
            "N" => {
                self.mirror_closed(model, &BreakerSettings::default());
                admit(PermitKind::Normal)
            }
            "P" => admit(PermitKind::Probe),
            "F" => {
                self.mirror_open(model, until, &BreakerSettings::default());
                admit(PermitKind::Forced)
            }
            _ => {
                self.mirror_open(model, until, &BreakerSettings::default());
                Admission::Refuse { until }
            }
        }
    }

    async fn record_remote(
        self: &Arc<Self>,
        model: &str,
        permit: Permit,
        verdict: Verdict,
        settings: BreakerSettings,
        guard: Option<ProbeGuard>,
    ) -> Transition {
        let key = self.link.key("cb", model);
        let (lease, ttl) = (self.lease_ms, self.ttl_ms);
        let reply = self
            .link
            .run(|mut conn| async move {
                let mut call = SCRIPT.prepare_invoke();
                call.key(key).arg("record").arg(lease).arg(ttl);
                record_args(&mut call, permit, verdict, &settings);
                call.invoke_async::<Reply>(&mut conn).await
            })
            .await;
        let Some((what, _, until_ms, cooldown_ms)) = reply else {
            if let Some(guard) = guard {
                guard.defer();
            }
            return self.apply_locally(model, verdict, &settings, Instant::now());
        };
        if let Some(guard) = guard {
            guard.disarm();
        }
        self.flush_pending();
        self.flush_unreleased();
        match what.as_str() {
            "O" => {
                let until = after(Instant::now(), millis(until_ms));
                self.mirror_open(model, until, &settings);
                Transition::Opened {
                    until,
                    cooldown: millis(cooldown_ms),
                }
            }
            "C" => {
                self.mirror_closed(model, &settings);
                Transition::Closed
            }
            _ => Transition::Unchanged,
        }
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.inner.link.prefix)
            .field("probe_lease_ms", &self.inner.lease_ms)
            .field("key_ttl_ms", &self.inner.ttl_ms)
            .field("local", &self.inner.local)
            .finish()
    }
}
