//! One Redis connection shared by the stores, with the time budget and the
//! outage handling every store operation goes through.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, RedisError, RedisResult};
use tokio::time::Instant;

use crate::chat::{ChatError, ConfigError, ErrorKind};
use crate::clamp::after;

/// A connection to Redis shared by the stores built on it (the cooldown
/// layer's breakers, the limit layer's usage counts): one multiplexed connection
/// (redis-rs `ConnectionManager`), opened on first use and reopened after a
/// failure, so building it never fails on an unreachable server.
///
/// Every operation gets a time budget ([`op_timeout`](RedisConnectionBuilder::op_timeout),
/// default 5 ms). When an operation fails or runs out of time, the stores
/// answer from their local in-memory view, and for
/// [`retry_interval`](RedisConnectionBuilder::retry_interval) (default 1 s) they
/// do not try Redis at all, so an outage costs a request nothing; then the
/// next operation tries again on a fresh connection. A warning is logged at
/// most once per [`warn_interval`](RedisConnectionBuilder::warn_interval)
/// (default 30 s), and an info event when Redis answers again.
///
/// Cheap to clone: clones share the connection and its state.
#[derive(Clone)]
pub struct RedisConnection {
    pub(crate) link: Arc<Link>,
}

impl RedisConnection {
    /// Starts a builder for the server at `url` (`redis://host:port/db`,
    /// `rediss://` is not enabled).
    pub fn builder(url: impl Into<String>) -> RedisConnectionBuilder {
        RedisConnectionBuilder {
            url: url.into(),
            prefix: RedisConnectionBuilder::DEFAULT_PREFIX.into(),
            op_timeout: RedisConnectionBuilder::DEFAULT_OP_TIMEOUT,
            retry_interval: Duration::from_secs(1),
            warn_interval: Duration::from_secs(30),
        }
    }

    /// Waits up to `timeout` for Redis to answer a `PING`: e.g. at start-up,
    /// to report a misconfigured URL early. The stores never need it.
    pub async fn ping(&self, timeout: Duration) -> Result<(), ChatError> {
        let link = &self.link;
        let unreachable = |detail: String| {
            ChatError::new(
                ErrorKind::Connect,
                format!("Redis at {} is unreachable: {detail}", link.addr),
            )
        };
        let mut conn = link.connection().map_err(|e| unreachable(e.to_string()))?;
        let cmd = redis::cmd("PING");
        let ping = cmd.query_async::<String>(&mut conn);
        match tokio::time::timeout(timeout, ping).await {
            Ok(Ok(_)) => {
                link.succeeded();
                Ok(())
            }
            Ok(Err(e)) => {
                link.drop_connection();
                Err(unreachable(e.to_string()))
            }
            Err(_) => {
                link.drop_connection();
                Err(unreachable(format!("no answer within {timeout:?}")))
            }
        }
    }

    /// The prefix of every key.
    pub fn prefix(&self) -> &str {
        &self.link.prefix
    }

    /// The time budget of one operation.
    pub fn op_timeout(&self) -> Duration {
        self.link.op_timeout
    }
}

impl fmt::Debug for RedisConnection {
    // The URL may hold a password: show the address only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConnection")
            .field("addr", &self.link.addr)
            .field("prefix", &self.link.prefix)
            .field("op_timeout", &self.link.op_timeout)
            .finish_non_exhaustive()
    }
}

/// Builds a [`RedisConnection`]; see its docs for the defaults.
#[derive(Clone)]
pub struct RedisConnectionBuilder {
    url: String,
    prefix: String,
    op_timeout: Duration,
    retry_interval: Duration,
    warn_interval: Duration,
}

impl RedisConnectionBuilder {
    /// The default key prefix.
    pub const DEFAULT_PREFIX: &'static str = "llm-fallback";
    /// The default time budget of one operation: several round trips on a
    /// local network, and little enough that a slow Redis does not slow calls.
    pub const DEFAULT_OP_TIMEOUT: Duration = Duration::from_millis(5);

    /// Namespaces every key as `<prefix>:...` (default `llm-fallback`), so
    /// several gateways (or tests) can share one Redis without seeing each other.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The time budget of one store operation (default 5 ms).
    pub fn op_timeout(mut self, budget: Duration) -> Self {
        self.op_timeout = budget;
        self
    }

    /// How long the stores answer locally after a failed operation before
    /// trying Redis again (default 1 s).
    pub fn retry_interval(mut self, interval: Duration) -> Self {
        self.retry_interval = interval;
        self
    }

    /// At most one warning about an unreachable Redis per interval (default 30 s).
    pub fn warn_interval(mut self, interval: Duration) -> Self {
        self.warn_interval = interval;
        self
    }

    /// The connection (not opened yet), or every invalid setting.
    pub fn build(self) -> Result<RedisConnection, ConfigError> {
        let mut errors = ConfigError::default();
        let client = match Client::open(self.url.as_str()) {
            Ok(client) => Some(client),
            Err(e) => {
                errors.push("store.url", format!("not a Redis URL: {e}"));
                None
            }
        };
        if self.prefix.is_empty() || self.prefix.chars().any(char::is_whitespace) {
            errors.push(
                "store.prefix",
                format!("prefix {:?} is empty or contains white space", self.prefix),
            );
        }
        for (name, value) in [
            ("op_timeout", self.op_timeout),
            ("retry_interval", self.retry_interval),
            ("warn_interval", self.warn_interval),
        ] {
            if value.is_zero() {
                errors.push(format!("store.{name}"), "must be longer than zero");
            }
        }
        let Some(client) = client.filter(|_| errors.is_empty()) else {
            return Err(errors);
        };
        let addr = client.get_connection_info().addr().to_string();
        Ok(RedisConnection {
            link: Arc::new(Link {
                client,
                addr,
                prefix: self.prefix,
                op_timeout: self.op_timeout,
                retry_interval: self.retry_interval,
                warn_interval: self.warn_interval,
                conn: Mutex::new(None),
                down: AtomicBool::new(false),
                outage: Mutex::new(Outage::default()),
            }),
        })
    }
}

impl fmt::Debug for RedisConnectionBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConnectionBuilder")
            .field("prefix", &self.prefix)
            .field("op_timeout", &self.op_timeout)
            .field("retry_interval", &self.retry_interval)
            .field("warn_interval", &self.warn_interval)
            .finish_non_exhaustive()
    }
}

/// The shared state behind a [`RedisConnection`].
pub(crate) struct Link {
    client: Client,
    addr: String,
    pub(crate) prefix: String,
    pub(crate) op_timeout: Duration,
    retry_interval: Duration,
    warn_interval: Duration,
    conn: Mutex<Option<ConnectionManager>>,
    /// Set while an outage lasts: read on every operation, so lock-free.
    down: AtomicBool,
    outage: Mutex<Outage>,
}

#[derive(Default)]
struct Outage {
    retry_at: Option<Instant>,
    last_warning: Option<Instant>,
    failures: u64,
}

impl Link {
    /// `<prefix>:<kind>:<model>`.
    pub(crate) fn key(&self, kind: &str, model: &str) -> String {
        format!("{}:{kind}:{model}", self.prefix)
    }

    /// Whether an operation should try Redis now (false during an outage,
    /// until the retry interval has passed).
    pub(crate) fn available(&self) -> bool {
        if !self.down.load(Ordering::Relaxed) {
            return true;
        }
        let outage = lock(&self.outage);
        outage.retry_at.is_none_or(|at| Instant::now() >= at)
    }

    /// Runs `op` on the connection within the time budget; `None` when Redis
    /// failed or was too slow (the caller answers locally).
    pub(crate) async fn run<T, F, Fut>(&self, op: F) -> Option<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let conn = match self.connection() {
            Ok(conn) => conn,
            Err(e) => {
                self.failed(&e.to_string());
                return None;
            }
        };
        match tokio::time::timeout(self.op_timeout, op(conn)).await {
            Ok(Ok(value)) => {
                self.succeeded();
                Some(value)
            }
            Ok(Err(e)) => {
                self.failed(&e.to_string());
                None
            }
            Err(_) => {
                self.failed(&format!("no answer within {:?}", self.op_timeout));
                None
            }
        }
    }

    /// The shared connection, opened lazily (it needs a tokio runtime).
    fn connection(&self) -> Result<ConnectionManager, RedisError> {
        let mut slot = lock(&self.conn);
        if let Some(conn) = &*slot {
            return Ok(conn.clone());
        }
        // One connection attempt, no retries of its own: the operation's
        // budget bounds it, a failure falls back to the local view, and the
        // next try (after the retry interval) opens a fresh connection.
        let config = ConnectionManagerConfig::new()
            .set_number_of_retries(0)
            .set_connection_timeout(Some(Duration::from_secs(1)));
        let conn = ConnectionManager::new_lazy_with_config(self.client.clone(), config)?;
        *slot = Some(conn.clone());
        Ok(conn)
    }

    fn drop_connection(&self) {
        lock(&self.conn).take();
    }

    fn succeeded(&self) {
        if !self.down.load(Ordering::Relaxed) {
            return;
        }
        let mut outage = lock(&self.outage);
        if self.down.swap(false, Ordering::Relaxed) {
            tracing::info!(
                addr = %self.addr,
                failed_ops = outage.failures,
                "Redis store reachable again"
            );
            *outage = Outage::default();
        }
    }

    fn failed(&self, detail: &str) {
        // A hung connection never recovers by itself: the next try opens a new one.
        self.drop_connection();
        let now = Instant::now();
        let mut outage = lock(&self.outage);
        self.down.store(true, Ordering::Relaxed);
        outage.retry_at = Some(after(now, self.retry_interval));
        outage.failures += 1;
        let due = outage
            .last_warning
            .is_none_or(|at| now.saturating_duration_since(at) >= self.warn_interval);
        if due {
            outage.last_warning = Some(now);
            tracing::warn!(
                addr = %self.addr,
                error = detail,
                failed_ops = outage.failures,
                retry_in_ms = self.retry_interval.as_millis() as u64,
                "Redis store unavailable; answering from the local view"
            );
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
