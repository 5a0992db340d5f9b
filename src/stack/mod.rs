//! The canonical stack, assembled in one call from a [`Config`]: the
//! equivalent of `notdiamond.init` and of LiteLLM's `Router`.
//!
//! [`Stack::from_config`] (or [`Stack::builder`], to plug in your own
//! provider services or a routing function) checks the whole config, builds
//! the provider clients and stacks the layers in the order of the design:
//!
//! ```text
//! SelectModel        only with StackBuilder::select_model
//! Timeout (total)    timeout.total
//! ProviderFallback   routes (one-way), fallback.groups, kind routes, fallback.recover_streams;
//!                    reads the cooldown's health
//! WeightedBalance    weighted routes (and their strategy), fallback.recover_streams;
//!                    reads the cooldown's health and the limits' usage
//! Limit              limits (only with some); usage counts in [store]
//! Cooldown           cooldown (unless enabled = false); breakers in [store]
//! Retry              retry, per model
//! Timeout (attempt)  timeout.attempt (default 60 s for complete answers);
//!                    streams: timeout.headers, first_token, idle, stream_total
//! PrependMessages    model_messages, per model
//! Providers          one client per provider (or your service); with `keys`, one client
//!                    per key behind a Credentials rotation
//! ```
//!
//! Every call ends by itself with no `[timeout]` at all: complete answers
//! get [`DEFAULT_ATTEMPT`](crate::layers::timeout::DEFAULT_ATTEMPT), streams the
//! [`StreamDeadlines`](crate::layers::timeout::StreamDeadlines) defaults, every client a
//! connect timeout ([`Stack::describe_timeouts`] prints them; the README's
//! "Timeouts" section has the table).
//!
//! So a request for a route tries its models in order (or by weight); each
//! model is retried on its own terms before the next one is called; a model
//! whose breaker is open is skipped without a call; each attempt gets the
//! messages of the model it calls. A provider's keys are rotated inside one
//! attempt, before any retry, and cool down in the cooldown's store (ids
//! `provider#label`; the store of [`StackBuilder::cooldown_store`] when
//! given), drawn with the config's `seed`. With mid-stream recovery on, a
//! stream cut after its first token is finished by the next candidate of
//! the route (a weighted route first draws among its own candidates); the
//! models of providers with `supports_prefill` get the partial answer to
//! continue. `[store]` puts breakers and usage counts on Redis, shared by
//! every replica built from the same config; the connection opens on the
//! first call, so building (and `llm-fallback check`) never needs Redis. A model's
//! `[limits]` hold for every call of it, drawn by a weighted route or called
//! by its id (an ordered route, a group, a client): when it is full it is
//! skipped like a cooling model. The result is a [`Stack`]: a boxed, cloneable service, plus
//! what a server needs to list and check the routes.
//!
//! Reloading: a `Reloader` (feature `reload`, on by default) serves a config
//! file and rebuilds its stack on demand, on `SIGHUP`, on a save and on `POST
//! /admin/reload`; [`StackState`] is what the rebuilt stack inherits
//! (breakers, usage windows, key cooldowns, learned delays, the Redis
//! connection) and what a changed provider does not.
//!
//! # Example
//!
//! ```
//! use llm_fallback::mock::{MockProvider, MockReply};
//! use llm_fallback::{ChatRequest, Config, ErrorKind, Message, Stack};
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
//! let config = Config::from_json_str(r#"{
//!     "providers": { "azure": { "kind": "azure", "endpoint": "https://x.openai.azure.com" },
//!                    "openai": { "kind": "openai" } },
//!     "routes": { "mini": ["azure/gpt-4o-mini", "openai/gpt-4o-mini"] },
//!     "retry": { "max_retries": { "default": 1, "models": { "azure/gpt-4o-mini": 2 } } }
//! }"#).unwrap();
//!
//! // Scripted providers stand in for the real clients here.
//! let azure = MockProvider::new();
//! azure.always("gpt-4o-mini", MockReply::error(ErrorKind::Server));
//! let openai = MockProvider::new();
//! let stack = Stack::builder()
//!     .config(config)
//!     .provider("azure", azure.clone())
//!     .provider("openai", openai.clone())
//!     .build()
//!     .unwrap();
//!
//! let response = stack.oneshot(ChatRequest::new("mini", [Message::user("hi")])).await.unwrap();
//! assert_eq!(response.model(), "openai/gpt-4o-mini");
//! assert_eq!(azure.call_count("gpt-4o-mini"), 3); // 1 call + 2 retries, then the fallback
//! # }
//! ```

mod build;
mod clients;
mod describe;
#[cfg(feature = "reload")]
mod reload;
mod state;
mod stores;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tower_service::Service;

use crate::chat::ConfigError;
use crate::config::{Config, ServerSetup};
use crate::layers::cooldown::CooldownStore;
use crate::layers::health::Health;
use crate::layers::limit::UsageStore;
use crate::layers::select::SelectModelLayer;
use crate::{BoxChatService, ChatError, ChatRequest, ChatResponse};

#[cfg(feature = "reload")]
pub use self::reload::{Reloader, Watch, DEBOUNCE};
pub use self::state::StackState;
pub use self::stores::Stores;

/// A built stack: the service, and what serving it needs. Cheap to clone.
/// See the [module docs](self).
#[derive(Clone)]
pub struct Stack {
    service: BoxChatService,
    info: Arc<Info>,
}

struct Info {
    timeouts: String,
    health: Health,
    routes: BTreeMap<String, Vec<String>>,
    summaries: BTreeMap<String, String>,
    providers: BTreeMap<String, String>,
    models: Vec<String>,
    server: ServerSetup,
    store: String,
    groups: String,
    server_summary: String,
    /// The stores the layers use, and the `[store]` they were made for.
    stores: Stores,
    store_config: crate::store::StoreConfig,
    /// Each configured provider's endpoint and keys, hashed.
    fingerprints: BTreeMap<String, u64>,
    config_hash: String,
    /// The hedge's learned delays, if it learns.
    learned: Option<Arc<crate::layers::hedge::LearnedDelay>>,
}

impl Stack {
    /// Starts a builder (an empty config until [`config`](StackBuilder::config)).
    pub fn builder() -> StackBuilder {
        StackBuilder::default()
    }

    /// Builds the stack `config` describes, with a client per provider and
    /// keys read from the process environment.
    pub fn from_config(config: &Config) -> Result<Stack, ConfigError> {
        Self::builder().config(config.clone()).build()
    }

    /// The service, boxed.
    pub fn service(&self) -> BoxChatService {
        self.service.clone()
    }

    /// Which models are cooling down (every model healthy without a cooldown).
    pub fn health(&self) -> Health {
        self.info.health.clone()
    }

    /// Each route alias and the models it may call, in order.
    pub fn routes(&self) -> &BTreeMap<String, Vec<String>> {
        &self.info.routes
    }

    /// Every alias and model id served: aliases first, then model ids, sorted.
    pub fn models(&self) -> &[String] {
        &self.info.models
    }

    /// One line per route: `alias: in order: a, b` or `alias: weighted: a 75%, b 25%`.
    pub fn describe_routes(&self) -> String {
        let mut out = String::new();
        for (alias, summary) in &self.info.summaries {
            out.push_str(&format!("{alias}: {summary}\n"));
        }
        out
    }

    /// One line per provider built from the config: its kind, where its
    /// key comes from (variable names and key labels, never keys), and
    /// whether it continues partial answers:
    /// `openai: openai, 2 keys: paid (tier 0, weight 2), free-1 (tier 1, weight 1)`.
    pub fn describe_providers(&self) -> String {
        let mut out = String::new();
        for (name, summary) in &self.info.providers {
            out.push_str(&format!("{name}: {summary}\n"));
        }
        out
    }

    /// Where breakers and usage counts live, in one line (a Redis URL's
    /// password is never shown): `memory (this process only)` or
    /// `redis redis://***@10.0.0.5:6379/0, prefix "gateway", 5ms per operation`.
    pub fn describe_store(&self) -> &str {
        &self.info.store
    }

    /// The effective deadlines of every model without its own, in one line
    /// (`"none"` where there is none), defaults included:
    /// `total none; attempt: complete answers 60s, streams none; streams:
    /// headers 15s, first token 60s, idle 30s, total none; connect 10s`.
    /// See the README's "Timeouts" section for what each bounds.
    pub fn describe_timeouts(&self) -> &str {
        &self.info.timeouts
    }

    /// One line per fallback group (`group: a <-> b`), group route
    /// (`route fast: a -> b`) and context-window or content-filter route
    /// (`context window exceeded: gpt-4o -> openai/gpt-4.1`); `none` without any.
    pub fn describe_fallback_groups(&self) -> &str {
        &self.info.groups
    }

    /// The `[server]` settings in one line, naming the client key's
    /// variable, never the key: `listen 127.0.0.1:8080; client key from
    /// GATEWAY_API_KEY; body limit 4194304 bytes; shutdown grace 20s`.
    pub fn describe_server(&self) -> &str {
        &self.info.server_summary
    }

    /// A hash of the config (16 hex digits), of its settings as parsed:
    /// not of comments or layout, nor of the keys its variables hold.
    pub fn config_hash(&self) -> &str {
        &self.info.config_hash
    }

    /// Whether `server.admin_reload` asks for `POST /admin/reload`.
    pub fn admin_reload(&self) -> bool {
        self.info.server.admin_reload
    }

    /// The address in `server.listen`, if any.
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        self.info.server.listen
    }

    /// The address in `server.metrics_listen`, if any: `/metrics` is served
    /// there (by [`LiveHandle::metrics_router`](crate::server::LiveHandle::metrics_router)), not beside the API.
    pub fn metrics_listen_addr(&self) -> Option<SocketAddr> {
        self.info
            .server
            .metrics_listen
            .filter(|_| self.info.server.metrics)
    }

    /// `server.shutdown_grace`, if set.
    pub fn shutdown_grace(&self) -> Option<Duration> {
        self.info.server.shutdown_grace
    }

    /// A server in front of this stack, with the models, routes, health,
    /// key and body limit of the `[server]` section; add your own options
    /// before `build()`.
    #[cfg(feature = "server")]
    pub fn server(&self) -> crate::server::ServerBuilder {
        let plan = &self.info.server;
        let mut builder = crate::server::ServerBuilder::new(self.service.clone())
            .models(self.info.models.iter().cloned())
            .routes(self.info.routes.clone())
            .health(self.info.health.clone())
            .config_hash(self.info.config_hash.clone());
        if let Some(key) = &plan.api_key {
            builder = builder.api_key(key.expose());
        }
        if let Some(limit) = plan.body_limit {
            builder = builder.body_limit(limit);
        }
        if plan.allow_unlisted {
            builder = builder.allow_unlisted_models();
        }
        match (plan.metrics, plan.metrics_auth) {
            (false, _) => {}
            (true, true) => builder = builder.metrics(),
            (true, false) => builder = builder.metrics_without_key(),
        }
        if plan.metrics && plan.metrics_listen.is_some() {
            builder = builder.metrics_on_own_listener();
        }
        builder
    }
}

impl Service<ChatRequest> for Stack {
    type Response = ChatResponse;
    type Error = ChatError;
    type Future = <BoxChatService as Service<ChatRequest>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ChatError>> {
        self.service.poll_ready(cx)
    }

    fn call(&mut self, request: ChatRequest) -> Self::Future {
        self.service.call(request)
    }
}

impl fmt::Debug for Stack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stack")
            .field("routes", &self.info.routes)
            .field("models", &self.info.models.len())
            .finish_non_exhaustive()
    }
}

/// The environment lookup of a builder.
type EnvFn = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Builds a [`Stack`]. Every problem of the config and of the parts given
/// here is reported by [`build`](Self::build), together.
#[derive(Default)]
pub struct StackBuilder {
    config: Config,
    supplied: BTreeMap<String, BoxChatService>,
    select: Option<SelectModelLayer>,
    env: Option<EnvFn>,
    store: Option<Arc<dyn CooldownStore>>,
    usage: Option<Arc<dyn UsageStore>>,
    state: Option<StackState>,
}

impl StackBuilder {
    /// The config to build (default: an empty one).
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Serves `name/...` model ids with `service` instead of a client built
    /// from the config (the config need not declare the provider; if it
    /// does, its endpoint and key are not used). For tests (`MockProvider`)
    /// and clients of your own.
    pub fn provider<S>(mut self, name: impl Into<String>, service: S) -> Self
    where
        S: Service<ChatRequest, Response = ChatResponse, Error = ChatError>
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        self.supplied
            .insert(name.into(), BoxChatService::new(service));
        self
    }

    /// Puts a routing function on top: it picks the model of each request.
    pub fn select_model(mut self, layer: SelectModelLayer) -> Self {
        self.select = Some(layer);
        self
    }

    /// Reads environment variables (keys, `MODEL_FALLBACK_GROUPS`) with
    /// `env` instead of from the process environment.
    pub fn env(mut self, env: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Self {
        self.env = Some(Arc::new(env));
        self
    }

    /// Keeps the cooldown's breakers, and the breakers of providers' keys,
    /// in `store` instead of the config's `[store]` (default: in memory).
    pub fn cooldown_store(mut self, store: Arc<dyn CooldownStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// Counts the usage of models with `[limits]` in `store` instead of the
    /// config's `[store]` (default: in memory).
    pub fn usage_store(mut self, store: Arc<dyn UsageStore>) -> Self {
        self.usage = Some(store);
        self
    }

    /// Reuses the stores of the stack last [committed](StackState::commit)
    /// to `state` when `[store]` is unchanged, so breakers, usage windows,
    /// key cooldowns and the Redis connection outlive a reload (see
    /// [`StackState`] for what is kept and what starts afresh).
    pub fn state(mut self, state: StackState) -> Self {
        self.state = Some(state);
        self
    }

    /// The stack, or every problem found.
    pub fn build(self) -> Result<Stack, ConfigError> {
        build::build(self)
    }
}

impl fmt::Debug for StackBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StackBuilder")
            .field("config", &self.config)
            .field("supplied", &self.supplied.keys().collect::<Vec<_>>())
            .field("select_model", &self.select.is_some())
            .finish_non_exhaustive()
    }
}
