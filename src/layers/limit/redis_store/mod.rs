//! Usage counts on Redis, shared by every process that points at the same server and prefix.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, LazyLock, RwLock};
use std::time::Duration;

use redis::Script;
use tokio::time::Instant;

use super::config::Limits;
use super::memory::InMemoryUsage;
use super::store::{Grant, Reservation, UsageStore, WindowUsage};
use crate::clamp::{self, after};
use crate::store::{Link, RedisConnection, StoreFuture};

static SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("usage.lua")));

/// Marks a grant counted by the local view (during an outage).
const LOCAL: u64 = 1 << 63;

/// A [`UsageStore`] on Redis: limits hold across every process sharing it.
///
/// Each deployment's usage is one hash, `<prefix>:use:<model>`, checked and
/// counted by a Lua script in one step, so concurrent processes never
/// overshoot a limit; windows are minutes of the server's clock, and a key
/// expires a minute after its window ends.
///
/// Each operation is bounded by the connection's time budget. When Redis
/// fails or is slow, the store counts in a local [`InMemoryUsage`]: during an
/// outage each process enforces the limits on its own calls only, so the
/// deployment may see up to one full limit per process.
///
/// ```no_run
/// use std::sync::Arc;
/// use llm_fallback::store::RedisConnection;
/// use llm_fallback::layers::limit::{LimitLayer, Limits, RedisUsage};
///
/// let redis = RedisConnection::builder("redis://127.0.0.1:6379").build().unwrap();
/// let limit = LimitLayer::builder()
///     .limits("azure/gpt-4o", Limits::default().with_rpm(600))
///     .store(Arc::new(RedisUsage::new(&redis)))
///     .build()
///     .unwrap();
/// # let _ = limit;
/// ```
#[derive(Clone)]
pub struct RedisUsage {
    inner: Arc<Inner>,
}

struct Inner {
    link: Arc<Link>,
    local: InMemoryUsage,
    /// The counts Redis last reported, per model.
    seen: RwLock<HashMap<Box<str>, WindowUsage>>,
}

/// granted, window, requests, tokens, ms until the window ends.
type Reply = (u8, u64, u64, u64, u64);

impl RedisUsage {
    /// A store on `connection`.
    pub fn new(connection: &RedisConnection) -> Self {
        RedisUsage {
            inner: Arc::new(Inner {
                link: connection.link.clone(),
                local: InMemoryUsage::new(),
                seen: RwLock::default(),
            }),
        }
    }
}

impl UsageStore for RedisUsage {
    fn reserve(&self, model: &str, limits: &Limits, tokens: u64) -> StoreFuture<Reservation> {
        if !self.inner.link.available() {
            return StoreFuture::ready(self.inner.local_reserve(model, limits, tokens));
        }
        // Lua numbers are doubles: keep the count exact there.
        let tokens = clamp::tokens(tokens);
        let (inner, model, limits) = (self.inner.clone(), model.to_owned(), *limits);
        StoreFuture::boxed(async move {
            let key = inner.link.key("use", &model);
            let limit = |l: Option<u64>| l.map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
            let reply = inner
                .link
                .run(|mut conn| async move {
                    let mut call = SCRIPT.prepare_invoke();
                    call.key(key).arg("reserve").arg(limit(limits.rpm));
                    call.arg(limit(limits.tpm)).arg(tokens);
                    call.invoke_async::<Reply>(&mut conn).await
                })
                .await;
            let Some(reply @ (granted, window, ..)) = reply else {
                return inner.local_reserve(&model, &limits, tokens);
            };
            let usage = inner.saw(&model, reply);
            match granted {
                1 => Reservation::Granted(Grant { window, tokens }),
                _ => Reservation::Denied {
                    until: usage.resets_at,
                },
            }
        })
    }

    fn settle(&self, model: &str, grant: Grant, requests: u64, tokens: u64) {
        let inner = &self.inner;
        if grant.window & LOCAL != 0 {
            let grant = Grant {
                window: grant.window & !LOCAL,
                ..grant
            };
            return inner.local.settle(model, grant, requests, tokens);
        }
        // Counts from the provider: clamped, so the signed deltas cannot wrap.
        let signed = |n: u64| i64::try_from(clamp::tokens(n)).unwrap_or(i64::MAX);
        let requests = signed(requests) - 1;
        let tokens = signed(tokens) - signed(grant.tokens);
        if (requests, tokens) == (0, 0) || !inner.link.available() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (inner, model) = (inner.clone(), model.to_owned());
        runtime.spawn(async move {
            let key = inner.link.key("use", &model);
            let reply = inner
                .link
                .run(|mut conn| async move {
                    let mut call = SCRIPT.prepare_invoke();
                    call.key(key).arg("settle").arg(grant.window);
                    call.arg(requests).arg(tokens);
                    call.invoke_async::<Reply>(&mut conn).await
                })
                .await;
            if let Some(reply) = reply {
                inner.saw(&model, reply);
            }
        });
    }

    fn usage(&self, model: &str) -> Option<WindowUsage> {
        let now = Instant::now();
        let seen = self.inner.seen.read().unwrap_or_else(|e| e.into_inner());
        match seen.get(model) {
            Some(usage) if usage.resets_at > now => Some(*usage),
            _ => self.inner.local.usage(model),
        }
    }
}

impl Inner {
    fn local_reserve(&self, model: &str, limits: &Limits, tokens: u64) -> Reservation {
        match self.local.reserve_now(model, limits, tokens) {
            Reservation::Granted(grant) => Reservation::Granted(Grant {
                window: grant.window | LOCAL,
                ..grant
            }),
            denied => denied,
        }
    }

    /// Remembers the counts Redis reported.
    fn saw(&self, model: &str, (_, _, requests, tokens, left): Reply) -> WindowUsage {
        let now = Instant::now();
        let usage = WindowUsage {
            requests,
            tokens,
            resets_at: after(now, Duration::from_millis(left)),
        };
        let mut seen = self.seen.write().unwrap_or_else(|e| e.into_inner());
        if let Some(known) = seen.get_mut(model) {
            *known = usage;
            return usage;
        }
        if seen.len() >= 1024 {
            seen.retain(|_, u| u.resets_at > now);
        }
        seen.insert(model.into(), usage);
        usage
    }
}

impl fmt::Debug for RedisUsage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisUsage")
            .field("prefix", &self.inner.link.prefix)
            .field("local", &self.inner.local)
            .finish_non_exhaustive()
    }
}
