//! Options of the server, checked when it is built.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;

use super::auth::ApiKeys;
use super::handle::LiveHandle;
use super::info::ModelEntry;
use super::live::{Active, Generation, ReloadFn, ReloadFuture};
use super::App;
use crate::chat::validate_model_id;
use crate::layers::health::Health;
use crate::{BoxChatService, ConfigError};

/// The default request body limit: 4 MiB.
///
/// A long conversation fits with room to spare; a body much larger is more
/// likely a mistake or abuse than a prompt. Raise it with
/// [`ServerBuilder::body_limit`] for prompts with inline base64 images.
pub const DEFAULT_BODY_LIMIT: usize = 4 * 1024 * 1024;

/// Options of the server: what it lists, who may call it, how much it reads.
///
/// Defaults: no models listed (every model is passed to the stack), no
/// routes (readiness is always 200), every model healthy, no key required,
/// [`DEFAULT_BODY_LIMIT`].
///
/// Once any model or route is given, requests naming anything else are
/// answered 404 `model_not_found` without calling the stack, unless
/// [`allow_unlisted_models`](Self::allow_unlisted_models) is set.
pub struct ServerBuilder {
    stack: BoxChatService,
    models: Vec<String>,
    routes: BTreeMap<String, Vec<String>>,
    health: Health,
    keys: Vec<String>,
    body_limit: usize,
    allow_unlisted: bool,
    metrics: Option<Metrics>,
    metrics_apart: bool,
    config_hash: String,
    reload: Option<ReloadFn>,
    errors: ConfigError,
}

/// Whether `GET /metrics` needs the client key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Metrics {
    WithKey,
    Open,
}

impl ServerBuilder {
    /// Options for a server in front of an already boxed `stack`.
    pub fn new(stack: BoxChatService) -> Self {
        ServerBuilder {
            stack,
            models: Vec::new(),
            routes: BTreeMap::new(),
            health: Health::always_healthy(),
            keys: Vec::new(),
            body_limit: DEFAULT_BODY_LIMIT,
            allow_unlisted: false,
            metrics: None,
            metrics_apart: false,
            config_hash: String::new(),
            reload: None,
            errors: ConfigError::default(),
        }
    }

    /// Lists a model id or alias in `GET /v1/models`.
    pub fn model(mut self, id: impl Into<String>) -> Self {
        let id = id.into();
        if let Err(e) = check_name(&id) {
            self.errors.push("models", e);
        } else if !self.models.contains(&id) {
            self.models.push(id);
        }
        self
    }

    /// Lists several model ids or aliases.
    pub fn models<I>(self, ids: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        ids.into_iter().fold(self, |b, id| b.model(id))
    }

    /// Declares a route: `alias` is served by `candidates` (`provider/model`
    /// ids). The alias is listed in `GET /v1/models`, and readiness checks
    /// that some candidate of some route is not cooling down. Routing itself
    /// is the stack's job; this only describes it.
    pub fn route<I>(mut self, alias: impl Into<String>, candidates: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        let alias = alias.into();
        let path = format!("routes.{alias}");
        let candidates: Vec<String> = candidates.into_iter().map(Into::into).collect();
        if let Err(e) = check_name(&alias) {
            self.errors.push("routes", e);
            return self;
        }
        if self.routes.contains_key(&alias) {
            self.errors
                .push(path, format!("route {alias:?} is declared twice"));
            return self;
        }
        if candidates.is_empty() {
            self.errors
                .push(&path, "a route needs at least one candidate");
        }
        for candidate in &candidates {
            if let Err(e) = validate_model_id(candidate) {
                self.errors.push(&path, e);
            }
        }
        self.routes.insert(alias, candidates);
        self
    }

    /// Declares several routes (e.g. a `BTreeMap<String, Vec<String>>`).
    pub fn routes<R, A, I>(self, routes: R) -> Self
    where
        R: IntoIterator<Item = (A, I)>,
        A: Into<String>,
        I: IntoIterator,
        I::Item: Into<String>,
    {
        routes
            .into_iter()
            .fold(self, |b, (alias, candidates)| b.route(alias, candidates))
    }

    /// The view of which models are cooling down, for readiness (usually the
    /// `Cooldown` layer's). Default: every model healthy.
    pub fn health(mut self, health: Health) -> Self {
        self.health = health;
        self
    }

    /// Requires clients to send `Authorization: Bearer <key>` on the `/v1`
    /// routes. Call again to accept several keys (e.g. while rotating).
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        let key = key.into();
        // The messages never quote the key: configuration errors get printed.
        if key.is_empty() {
            self.errors.push("api_key", "the key is empty");
        } else if !key.bytes().all(|b| b.is_ascii_graphic()) {
            self.errors.push(
                "api_key",
                "the key contains white space, control or non-ASCII characters, \
                 so no client could send it in an Authorization header",
            );
        } else {
            self.keys.push(key);
        }
        self
    }

    /// The largest request body read, in bytes; larger bodies get a 413.
    /// Default: [`DEFAULT_BODY_LIMIT`].
    pub fn body_limit(mut self, bytes: usize) -> Self {
        if bytes == 0 {
            self.errors
                .push("body_limit", "the body limit must be at least 1 byte");
        }
        self.body_limit = bytes;
        self
    }

    /// Passes requests for models that are neither listed nor a route alias
    /// to the stack instead of answering 404 (the stack may still answer 404).
    pub fn allow_unlisted_models(mut self) -> Self {
        self.allow_unlisted = true;
        self
    }

    /// Serves Prometheus metrics on `GET /metrics` (text format 0.0.4),
    /// behind the client key when one is set. Default: off.
    ///
    /// Each chat call is recorded once when it ends, from its outcome, its
    /// attempt log and its usage; breakers are read from the
    /// [`health`](Self::health) view when scraped. The registry is the
    /// server's own: nothing global is installed. Model labels take only the
    /// listed models, route aliases and candidates, or `other`. The attempt
    /// series (attempts, retries, skips, fallbacks, recoveries) need a stack
    /// with a layer that keeps the attempt log (retry, cooldown, fallback,
    /// balance), as the gateway built from a config has.
    ///
    /// ```
    /// use http::{header, Request, StatusCode};
    /// use llm_fallback::mock::{MockProvider, MockReply};
    /// use llm_fallback::server::Server;
    /// use tower::ServiceExt;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let stack = MockProvider::new();
    /// stack.always("openai/gpt-4o-mini", MockReply::text("hello"));
    /// let app = Server::builder(stack)
    ///     .models(["openai/gpt-4o-mini"])
    ///     .metrics()
    ///     .build()
    ///     .expect("valid server options");
    ///
    /// let chat = Request::post("/v1/chat/completions")
    ///     .header(header::CONTENT_TYPE, "application/json")
    ///     .body(r#"{"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}"#.to_owned())
    ///     .unwrap();
    /// assert_eq!(app.clone().oneshot(chat).await.unwrap().status(), StatusCode::OK);
    ///
    /// let scrape = Request::get("/metrics").body(String::new()).unwrap();
    /// let response = app.oneshot(scrape).await.unwrap();
    /// let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    /// let text = String::from_utf8(body.to_vec()).unwrap();
    /// let served = "llm_fallback_requests_total{gen_ai_request_model=\"openai/gpt-4o-mini\",\
    ///     gen_ai_response_model=\"openai/gpt-4o-mini\",gen_ai_provider_name=\"openai\",\
    ///     http_response_status_code=\"200\",outcome=\"completed\",error_type=\"\"} 1";
    /// assert!(text.contains(served), "{text}");
    /// # }
    /// ```
    pub fn metrics(mut self) -> Self {
        self.metrics.get_or_insert(Metrics::WithKey);
        self
    }

    /// Serves metrics as [`metrics`](Self::metrics) does, without the client
    /// key (for a scraper that cannot send one; the series name models and
    /// routes, no keys or content).
    pub fn metrics_without_key(mut self) -> Self {
        self.metrics = Some(Metrics::Open);
        self
    }

    /// Serves `/metrics` (when [`metrics`](Self::metrics) is on) not beside
    /// the API but on a router of its own,
    /// [`LiveHandle::metrics_router`](super::LiveHandle::metrics_router), to
    /// serve on another address (e.g. an internal port scrapers reach and
    /// clients do not). The client key still guards it unless
    /// [`metrics_without_key`](Self::metrics_without_key).
    pub fn metrics_on_own_listener(mut self) -> Self {
        self.metrics_apart = true;
        self
    }

    /// The hash of the config the stack was built from, shown by
    /// `/health/ready` and `/metrics` (default: empty).
    pub fn config_hash(mut self, hash: impl Into<String>) -> Self {
        self.config_hash = hash.into();
        self
    }

    /// Serves `POST /admin/reload`, behind the client key like the `/v1`
    /// routes, which calls `reload` and answers with the new generation
    /// (200) or every problem of the refused config (422). Default: not
    /// served (404). Without a client key anyone who reaches the server
    /// may reload it, so set one ([`api_key`](Self::api_key)).
    pub fn admin_reload<F>(mut self, reload: F) -> Self
    where
        F: Fn() -> ReloadFuture + Send + Sync + 'static,
    {
        self.reload = Some(Arc::new(reload));
        self
    }

    /// The router, or every problem found in the options.
    pub fn build(self) -> Result<Router, ConfigError> {
        self.build_live().map(|(router, _)| router)
    }

    /// The router, and a [`LiveHandle`] that swaps what it serves while it
    /// runs (generation 1 is this builder's stack); or every problem found
    /// in the options.
    pub fn build_live(mut self) -> Result<(Router, LiveHandle), ConfigError> {
        let keys = std::mem::take(&mut self.keys);
        let body_limit = self.body_limit;
        let metrics = self.metrics;
        let self_apart = self.metrics_apart;
        let reload = self.reload.take();
        let hash = std::mem::take(&mut self.config_hash);
        let active = self.into_active(Generation::first(hash))?;
        let series = metrics.map(|_| Arc::new(super::metrics::Metrics::new(&active)));
        let live = LiveHandle {
            active: Arc::new(arc_swap::ArcSwap::from_pointee(active)),
            metrics: series.clone(),
            metrics_router: None,
        };
        let app = App {
            live: live.active.clone(),
            body_limit,
            metrics: series,
            reload,
        };
        let open = metrics == Some(Metrics::Open);
        let (router, metrics_router) = super::router(app, ApiKeys::new(keys), open, self_apart);
        let live = LiveHandle {
            metrics_router,
            ..live
        };
        Ok((router, live))
    }

    /// The part of the options a config describes, as `generation`.
    pub(crate) fn into_active(self, generation: Generation) -> Result<Active, ConfigError> {
        let ServerBuilder {
            mut models,
            routes,
            health,
            allow_unlisted,
            stack,
            errors,
            ..
        } = self;
        errors.into_result(())?;
        for alias in routes.keys() {
            if !models.contains(alias) {
                models.push(alias.clone());
            }
        }
        let created = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let entries: Vec<ModelEntry> = models
            .into_iter()
            .map(|id| ModelEntry::new(id, created))
            .collect();
        let listed: HashSet<String> = entries.iter().map(|m| m.id().to_owned()).collect();
        Ok(Active {
            stack,
            only_listed: !allow_unlisted && !listed.is_empty(),
            listed,
            models: entries.into(),
            routes,
            health,
            generation,
        })
    }
}

fn check_name(id: &str) -> Result<(), String> {
    if id.is_empty() {
        Err("a model id or alias is empty".to_owned())
    } else if id.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Err(format!("model id or alias {id:?} contains white space"))
    } else {
        Ok(())
    }
}

impl fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("models", &self.models)
            .field("routes", &self.routes)
            .field("api_keys", &format_args!("{} redacted", self.keys.len()))
            .field("body_limit", &self.body_limit)
            .field("allow_unlisted_models", &self.allow_unlisted)
            .field("metrics", &self.metrics)
            .field("config_hash", &self.config_hash)
            .field("admin_reload", &self.reload.is_some())
            .finish_non_exhaustive()
    }
}
