//! Live reload of a gateway's config file (see [`Reloader`]).

mod changes;
mod watch;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

use axum::Router;

use self::changes::Changes;
use super::state::bytes_hash;
use super::{EnvFn, Stack, StackState};
use crate::config::Config;
use crate::server::{Generation, LiveHandle, ReloadFuture};
use crate::ConfigError;

pub use self::watch::{Watch, DEBOUNCE};

/// Live reload of a gateway's config file: read it again, check it, and
/// if it is valid serve the new stack at once, keeping the state of what
/// did not change; if it is not, keep the old one and say every problem.
///
/// A `Reloader` builds the first stack and its server from a file, then
/// rebuilds on demand: [`reload`](Reloader::reload) (what `SIGHUP` and
/// `POST /admin/reload` call), or by itself when the file changes
/// ([`watch`](Reloader::watch)).
///
/// What a reload does:
///
/// - **Valid config**: new requests use the new stack at once; requests in
///   flight, streams included, finish on the stack they started on (the
///   server swaps an `Arc`, see [`LiveHandle`]). The generation goes up by
///   one; `/health/ready` and `/metrics` show it and the config's hash.
///   A model removed from the config is no longer called (its routes are
///   gone); a provider whose key changed uses the new key for new calls.
/// - **State** of unchanged models survives: breakers, usage windows, key
///   cooldowns, learned hedge delays and the Redis connection (see
///   [`StackState`] for what is kept by which key, and what a changed
///   provider loses).
/// - **Invalid config**: the old stack stays; every problem is logged with
///   its path, as at startup, and returned.
/// - **`[server]`**: only `allow_unlisted_models` applies at once; the
///   address, client key, body limit, `/metrics` and `admin_reload` take
///   effect on restart (the log says so).
///
/// One line is logged per reload: the generation, the hash, routes and
/// providers added (`+`), removed (`-`) and changed (`~`), and providers
/// whose state was reset.
///
/// # Example
///
/// ```no_run
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use llm_fallback::server;
/// use llm_fallback::stack::Reloader;
///
/// let reloader = Reloader::open("gateway.toml")?;
/// let _watch = reloader.watch()?; // reload when the file is saved
/// reloader.reload_on_sighup()?;
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
/// let grace = std::time::Duration::from_secs(20);
/// server::serve(listener, reloader.router(), server::shutdown_signal(), grace).await;
/// # Ok(()) }
/// ```
///
/// Cheap to clone.
#[derive(Clone)]
pub struct Reloader {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    env: Option<EnvFn>,
    state: StackState,
    /// The config served and its stack; held through a reload, so
    /// reloads run one at a time.
    current: Mutex<(Config, Stack)>,
    live: LiveHandle,
    router: Router,
    /// The hash of the file's bytes as last read by a reload: the watch
    /// reloads only when they change.
    read: AtomicU64,
}

impl Reloader {
    /// Reads, checks and builds the config at `path` (keys from the
    /// process environment): generation 1. Fails with every problem.
    pub fn open(path: impl Into<PathBuf>) -> Result<Reloader, ConfigError> {
        Self::open_inner(path.into(), None)
    }

    /// [`open`](Self::open), reading environment variables with `env`
    /// (also on every reload).
    pub fn open_with_env(
        path: impl Into<PathBuf>,
        env: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Result<Reloader, ConfigError> {
        Self::open_inner(path.into(), Some(Arc::new(env)))
    }

    fn open_inner(path: PathBuf, env: Option<EnvFn>) -> Result<Reloader, ConfigError> {
        let state = StackState::new();
        let read = AtomicU64::new(file_hash(&path));
        let config = Config::from_path(&path)?;
        let stack = build(&config, &env, &state)?;
        state.commit(&stack);
        // The endpoint reaches the reloader that owns the router through
        // a weak link, so the two do not keep each other alive.
        let slot: Arc<OnceLock<Weak<Inner>>> = Arc::default();
        let mut server = stack.server();
        if stack.admin_reload() {
            let slot = slot.clone();
            server = server.admin_reload(move || -> ReloadFuture {
                let inner = slot.get().and_then(Weak::upgrade);
                Box::pin(async move {
                    match inner {
                        Some(inner) => Reloader { inner }.reload_in_background().await,
                        None => Err(ConfigError::new("reload", "the gateway is stopping")),
                    }
                })
            });
        }
        let (router, live) = server.build_live()?;
        let inner = Arc::new(Inner {
            path,
            env,
            state,
            current: Mutex::new((config, stack)),
            live,
            router,
            read,
        });
        let _ = slot.set(Arc::downgrade(&inner));
        Ok(Reloader { inner })
    }

    /// The server: serve it with [`server::serve`](crate::server::serve).
    pub fn router(&self) -> Router {
        self.inner.router.clone()
    }

    /// `/metrics` on a router of its own, when `server.metrics_listen` is
    /// set: serve it on that address.
    pub fn metrics_router(&self) -> Option<Router> {
        self.inner.live.metrics_router()
    }

    /// The stack served now.
    pub fn stack(&self) -> Stack {
        self.lock().1.clone()
    }

    /// The generation served now.
    pub fn generation(&self) -> Generation {
        self.inner.live.generation()
    }

    /// The config file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    fn lock(&self) -> MutexGuard<'_, (Config, Stack)> {
        self.inner.current.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads the file again; if its config is valid, serves it from now on
    /// and returns its generation, else keeps the active one and returns
    /// every problem. Logs one line either way. Blocks while it reads the
    /// file and builds the clients (a few milliseconds): from async code,
    /// prefer [`reload_in_background`](Self::reload_in_background).
    pub fn reload(&self) -> Result<Generation, ConfigError> {
        let started = std::time::Instant::now();
        let mut current = self.lock();
        let shown = self.inner.path.display().to_string();
        (self.inner.read).store(file_hash(&self.inner.path), Ordering::Relaxed);
        let built = Config::from_path(&self.inner.path)
            .and_then(|config| Ok((build(&config, &self.inner.env, &self.inner.state)?, config)));
        let (stack, config) = match built {
            Ok(built) => built,
            Err(e) => {
                let active = self.generation();
                tracing::error!(
                    config = %shown.escape_debug(),
                    generation = active.number,
                    config_hash = %active.hash,
                    problems = %one_line(&e),
                    "config reload refused: {} problem(s); generation {} stays",
                    e.problems().len(),
                    active.number,
                );
                return Err(e);
            }
        };
        let changes = Changes::between((&current.0, &current.1), (&config, &stack));
        let reset = self.inner.state.commit(&stack);
        let hash = stack.config_hash().to_owned();
        let generation = self.inner.live.swap(stack.server(), hash)?;
        tracing::info!(
            config = %shown.escape_debug(),
            generation = generation.number,
            config_hash = %generation.hash,
            routes = %changes.routes,
            providers = %changes.providers,
            state_reset = %reset.join(", ").escape_debug(),
            store_changed = changes.store,
            took_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "config reloaded",
        );
        if changes.server {
            tracing::warn!(
                generation = generation.number,
                "[server] changed: allow_unlisted_models applies now; listen, the client key, \
                 body_limit, metrics and admin_reload take effect on restart",
            );
        }
        *current = (config, stack);
        Ok(generation)
    }

    /// Whether the file's bytes differ from those the last reload read.
    fn file_changed(&self) -> bool {
        file_hash(&self.inner.path) != self.inner.read.load(Ordering::Relaxed)
    }

    /// [`reload`](Self::reload) on tokio's blocking threads, so the
    /// runtime's workers keep serving meanwhile.
    pub async fn reload_in_background(self) -> Result<Generation, ConfigError> {
        match tokio::task::spawn_blocking(move || self.reload()).await {
            Ok(result) => result,
            Err(e) => Err(ConfigError::new(
                "reload",
                format!("the reload failed: {e}"),
            )),
        }
    }

    /// Reloads on every `SIGHUP` from now on (the handler is installed
    /// before this returns, so a signal sent next is not missed), in a
    /// task that runs until the process ends or it is aborted. Must be
    /// called from a tokio runtime.
    #[cfg(unix)]
    pub fn reload_on_sighup(&self) -> std::io::Result<tokio::task::JoinHandle<()>> {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hangup = signal(SignalKind::hangup())?;
        let reloader = self.clone();
        Ok(tokio::spawn(async move {
            while hangup.recv().await.is_some() {
                tracing::info!("SIGHUP received: reloading the config");
                // The outcome is logged by the reload.
                let _ = reloader.clone().reload_in_background().await;
            }
        }))
    }
}

/// The hash of the file's bytes (0 when it cannot be read).
fn file_hash(path: &Path) -> u64 {
    std::fs::read(path).map_or(0, |bytes| bytes_hash(&bytes))
}

fn build(config: &Config, env: &Option<EnvFn>, state: &StackState) -> Result<Stack, ConfigError> {
    let mut builder = Stack::builder().config(config.clone()).state(state.clone());
    if let Some(env) = env.clone() {
        builder = builder.env(move |var| env(var));
    }
    builder.build()
}

/// Every problem on one line: `path: message; path: message`, escaped.
fn one_line(e: &ConfigError) -> String {
    let problems = e.problems().iter();
    let each = problems.map(|p| {
        format!("{}: {}", p.path, p.message)
            .escape_debug()
            .to_string()
    });
    each.collect::<Vec<_>>().join("; ")
}

impl fmt::Debug for Reloader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reloader")
            .field("path", &self.inner.path)
            .field("generation", &self.generation())
            .finish_non_exhaustive()
    }
}
