//! What the tests against the real Redis share: a unique key prefix per
//! test, a connection that fails with a clear message when Redis is not
//! running, cleanup, polling for a condition (never a fixed sleep), and a
//! TCP proxy that can cut the connection.

#![allow(dead_code)]

#[path = "../waiting/mod.rs"]
mod waiting;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use llm_fallback::store::RedisConnection;
use tokio::io::{copy_bidirectional, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

#[allow(unused_imports)] // not every test binary polls
pub use waiting::{poll_until, poll_within, POLL_LIMIT};

pub const REDIS: &str = "127.0.0.1:6379";

/// A prefix no other test (or run) uses, so tests run in parallel.
pub fn unique_prefix(test: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("llmfb-test:{test}:{}-{nanos:x}-{n}", std::process::id())
}

/// A connection to `addr` with a budget generous enough that Redis (not a
/// timeout falling back to the local view) decides every operation.
pub async fn connect(addr: &str, prefix: &str, budget: Duration) -> RedisConnection {
    let connection = RedisConnection::builder(format!("redis://{addr}"))
        .prefix(prefix)
        .op_timeout(budget)
        .retry_interval(Duration::from_millis(100))
        .build()
        .unwrap();
    connection
        .ping(Duration::from_secs(3))
        .await
        .unwrap_or_else(|e| {
            panic!("these tests need Redis on {REDIS} (`.ci/run` starts it: redis-server --daemonize yes --port 6379 --save \"\" --appendonly no): {e}")
        });
    connection
}

/// A plain client connection, to look at keys behind the stores' backs.
pub async fn client() -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(format!("redis://{REDIS}")).unwrap();
    client
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|e| panic!("these tests need Redis on {REDIS} (`.ci/run` starts it): {e}"))
}

/// Every key under `prefix`.
pub async fn keys(prefix: &str) -> Vec<String> {
    let mut conn = client().await;
    redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut conn)
        .await
        .unwrap()
}

/// The key's time to live in ms (-1: none, -2: no key).
pub async fn pttl(key: &str) -> i64 {
    let mut conn = client().await;
    redis::cmd("PTTL")
        .arg(key)
        .query_async(&mut conn)
        .await
        .unwrap()
}

/// A field of a hash.
pub async fn hget(key: &str, field: &str) -> Option<String> {
    let mut conn = client().await;
    redis::cmd("HGET")
        .arg(key)
        .arg(field)
        .query_async(&mut conn)
        .await
        .unwrap()
}

/// Deletes every key under `prefix` (they expire anyway).
pub async fn cleanup(prefix: &str) {
    let keys = keys(prefix).await;
    if !keys.is_empty() {
        let mut conn = client().await;
        let _: () = redis::cmd("DEL")
            .arg(keys)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
}

/// The Redis server's clock, in ms since the epoch (the clock its scripts use).
pub async fn server_ms() -> u64 {
    let mut conn = client().await;
    let (secs, micros): (u64, u64) = redis::cmd("TIME").query_async(&mut conn).await.unwrap();
    secs * 1000 + micros / 1000
}

/// Whether the breaker in `key` would admit a call now, by the server's
/// clock: closed (or no key), or open with its time over. A running probe
/// does not admit.
pub async fn breaker_admits(key: &str) -> bool {
    let (state, until) = (hget(key, "s").await, hget(key, "u").await);
    match state.as_deref() {
        None | Some("c") => true,
        Some("o") => {
            let now = server_ms().await;
            until
                .and_then(|u| u.parse::<u64>().ok())
                .is_some_and(|u| u <= now)
        }
        _ => false,
    }
}

/// The calls the breaker in `key` counts in its failure-ratio window.
pub async fn window_calls(key: &str) -> u64 {
    let mut total = 0;
    for bucket in 0..10 {
        if let Some(entry) = hget(key, &format!("w{bucket}")).await {
            // "slot:calls:failures"
            total += entry
                .split(':')
                .nth(1)
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
        }
    }
    total
}

/// Waits, if needed, until the current minute of the server's clock has
/// `needed` left, so that a test of per-minute limits runs in one window.
pub async fn within_one_minute(needed: Duration) {
    let limit = needed + POLL_LIMIT;
    let needed = u64::try_from(needed.as_millis()).unwrap();
    poll_within(
        limit,
        "a minute with enough left on the server's clock",
        async || 60_000 - server_ms().await % 60_000 >= needed,
    )
    .await;
}

/// A TCP proxy in front of Redis that can stop answering.
pub struct Proxy {
    pub addr: SocketAddr,
    mode: watch::Sender<Mode>,
    mute: Arc<AtomicBool>,
    /// Connections accepted while blackholing.
    blackholed: Arc<AtomicUsize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Passes bytes both ways.
    Forward,
    /// Accepts connections and never answers: a hung or partitioned server.
    Blackhole,
    /// Passes bytes both ways, but drops every reply while
    /// [`mute`](Proxy::mute) is on: Redis acts, the caller never hears of it.
    Muting,
}

impl Proxy {
    pub async fn start() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (mode, watching) = watch::channel(Mode::Forward);
        let mute = Arc::new(AtomicBool::new(false));
        let muted = mute.clone();
        let blackholed = Arc::new(AtomicUsize::new(0));
        let counter = blackholed.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let mut watching = watching.clone();
                let mode = *watching.borrow_and_update();
                let muted = muted.clone();
                if mode == Mode::Blackhole {
                    counter.fetch_add(1, Ordering::Relaxed);
                }
                tokio::spawn(async move {
                    let serve = async {
                        match mode {
                            Mode::Forward => {
                                if let Ok(mut upstream) = TcpStream::connect(REDIS).await {
                                    let _ = copy_bidirectional(&mut client, &mut upstream).await;
                                }
                            }
                            Mode::Muting => {
                                if let Ok(upstream) = TcpStream::connect(REDIS).await {
                                    let (mut from_redis, mut to_redis) = upstream.into_split();
                                    let (mut from_client, mut to_client) = client.split();
                                    let replies = async {
                                        let mut buf = vec![0; 16 * 1024];
                                        loop {
                                            let n = from_redis.read(&mut buf).await?;
                                            if n == 0 {
                                                return Ok::<_, std::io::Error>(());
                                            }
                                            if !muted.load(Ordering::SeqCst) {
                                                to_client.write_all(&buf[..n]).await?;
                                            }
                                        }
                                    };
                                    let _ = tokio::join!(
                                        tokio::io::copy(&mut from_client, &mut to_redis),
                                        replies,
                                    );
                                }
                            }
                            Mode::Blackhole => std::future::pending().await,
                        }
                    };
                    // Any change of mode cuts the connections made before it.
                    tokio::select! {
                        _ = serve => {}
                        _ = watching.changed() => {}
                    }
                });
            }
        });
        Proxy {
            addr,
            mode,
            mute,
            blackholed,
        }
    }

    pub fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }

    /// In [`Mode::Muting`]: drops Redis's replies (on) or passes them (off),
    /// without cutting any connection.
    pub fn mute(&self, on: bool) {
        self.mute.store(on, Ordering::SeqCst);
    }

    /// How many connections were accepted (and left hanging) while blackholing.
    pub fn blackholed(&self) -> usize {
        self.blackholed.load(Ordering::Relaxed)
    }
}
