//! An OpenAI-compatible HTTP server (axum) in front of any chat stack.
//!
//! [`Server::builder`] turns a `Service<ChatRequest, Response = ChatResponse,
//! Error = ChatError>` into an axum [`Router`] that official OpenAI clients
//! talk to unchanged:
//!
//! | route | answer |
//! |---|---|
//! | `POST /v1/chat/completions` | a `chat.completion` in JSON, or SSE when `"stream": true` |
//! | `GET /v1/models`, `GET /v1/models/{id}` | the listed models and route aliases, OpenAI's list shape |
//! | `GET /health` | liveness: always 200 while the process serves |
//! | `GET /health/ready` | readiness: 200 if some declared route has a candidate that is not cooling down (or no route is declared), else 503 with `Retry-After`; the body lists each route's available and cooling models, and the config served (`config`: `generation`, `hash`, `loaded_at`) |
//! | `GET /metrics` | Prometheus text (with [`metrics`](ServerBuilder::metrics)): see below |
//! | `POST /admin/reload` | with [`admin_reload`](ServerBuilder::admin_reload), behind the key: 200 `{"generation", "config_hash"}` after a reload, 422 with every `problems` entry (`path`, `message`) of a refused config |
//!
//! What the caller sees:
//!
//! - Streams are `data: {chunk}\n\n` frames ending with `data: [DONE]\n\n`.
//!   Usage is sent only when the caller set `stream_options.include_usage`.
//!   After a fault mid-stream, one in-band `data: {"error": {...}}` event is
//!   sent and the stream ends **without** `[DONE]`, so no client mistakes a
//!   cut answer for a complete one.
//! - Errors are `{"error": {"message", "type", "code", "param"}}` with the
//!   statuses in [`ApiError`]'s table (429 and 503 with `Retry-After`).
//!   Errors the gateway already retried (every 502, 503, 504, and a 429
//!   from the stack) say `x-should-retry: false` ([`SHOULD_RETRY_HEADER`]), so clients may
//!   keep their SDK's retry defaults without multiplying the load.
//! - Every answer to a chat call has the headers [`MODEL_HEADER`] (served
//!   model), [`ATTEMPTS_HEADER`] (upstream calls) and [`FALLBACKS_HEADER`]
//!   (other models tried); errors have the last two. A call that started a
//!   hedge also has [`HEDGES_HEADER`] (hedges started), and its log line
//!   says `hedges` and whether a hedge won (`hedge_won`). Responses and chunks
//!   name the served model in `model`; after mid-stream recovery every
//!   chunk still shows the `id`, `model`, `created` and
//!   `system_fingerprint` the caller saw first (the log line says who
//!   finished the answer).
//! - Bad input gets a 4xx in the same shape and the server keeps serving:
//!   wrong content type 415, body over the limit 413 (default
//!   [`DEFAULT_BODY_LIMIT`]), malformed JSON or a missing `model` /
//!   `messages` 400, a model that is neither listed nor a route alias 404
//!   `model_not_found`, a missing or wrong key 401.
//!
//! The `/v1` routes and `/health/ready` (which tells which models are
//! configured and which are cooling down) require `Authorization: Bearer
//! <key>` when [`api_key`](ServerBuilder::api_key) is set; `/health` never
//! does, so load balancers can probe it without a key (a readiness probe
//! sends the key as a header, e.g. Kubernetes' `httpGet.httpHeaders`). Keys are compared in constant time and never
//! logged. Each chat call logs one `tracing` event, `chat completion`, when
//! it ends (for a stream: after its last event, or when the caller goes
//! away), never message content: `model` (asked), `served` (the model that
//! finished the answer), `recovered_from` (models whose streams were cut
//! before another finished them), `upstream_calls`, `skips` (models not
//! called because they were cooling down), `stream`, `ttft_ms` (first
//! content sent), `total_ms`, `tokens` (`prompt+completion` or `unknown`),
//! `status` (for a stream that failed after its headers, the status of its
//! in-band error, never 200), `outcome` (`completed`, `failed` or
//! `cancelled`) and `error` (the error's kind). Strings that come from a
//! client or a provider (model ids, error messages) are logged escaped, so a
//! newline or a terminal escape in them cannot forge a log line.
//!
//! Each chat call also runs in a debug-level `tracing` span named `chat`
//! (`otel.name` `chat {model}`), filled when the call ends with
//! OpenTelemetry's GenAI attributes (`gen_ai.request.model`,
//! `gen_ai.response.model`, `gen_ai.provider.name`, token usage,
//! `error.type`) and the call's upstream calls, retries, fallbacks, hedges
//! and skips; the retry layer's per-attempt spans are its children. With
//! the `otel` feature and a `tracing-opentelemetry` layer, an incoming W3C
//! `traceparent` becomes its parent.
//!
//! With [`metrics`](ServerBuilder::metrics), each chat call is also
//! recorded when it ends, in a registry the server owns (nothing global; the
//! layers record nothing). The series, named after OpenTelemetry's GenAI
//! conventions where they define a name:
//!
//! | series | labels | what |
//! |---|---|---|
//! | `gen_ai_client_operation_duration_seconds` (histogram) | `gen_ai_operation_name`, call, `error_type` | from the request to the end of the answer |
//! | `gen_ai_server_time_to_first_token_seconds` (histogram) | call | streams: to the first content sent |
//! | `gen_ai_client_token_usage` (histogram) | `gen_ai_operation_name`, call, `gen_ai_token_type` (`input`, `output`) | tokens the answer reported |
//! | `llm_fallback_requests_total` | call, `http_response_status_code`, `outcome` (`completed`, `failed`, `cancelled`), `error_type` | calls that reached the stack |
//! | `llm_fallback_rejected_requests_total` | `http_response_status_code` | calls answered 4xx before the stack |
//! | `llm_fallback_upstream_attempts_total` | model, `outcome` (`ok` or the error's kind) | upstream calls |
//! | `llm_fallback_upstream_attempt_duration_seconds` (histogram) | model | each upstream call |
//! | `llm_fallback_skips_total` | model, `reason` (`cooling`, `limited`, `shed`) | models passed over without a call |
//! | `llm_fallback_retries_total` | model | calls repeating an earlier one of the same model (key rotations aside) |
//! | `llm_fallback_fallbacks_total` | `gen_ai_request_model` (the route) | other models called after the first (hedges included, as in [`FALLBACKS_HEADER`]) |
//! | `llm_fallback_recoveries_total` | model (the one cut) | streams cut and finished by another model |
//! | `llm_fallback_hedges_total` | model (the hedge) | models called as a hedge |
//! | `llm_fallback_hedges_won_total` | model (the hedge) | calls a hedge served |
//! | `llm_fallback_breaker_open` (gauge) | model | 1 while the model is cooling down, read at scrape time |
//! | `llm_fallback_breaker_transitions_total` | model, `to` (`open`, `closed`) | times the model's breaker opened (tripped, or its probe failed) and closed (its probe succeeded), counted by this process, read at scrape time |
//! | `llm_fallback_config_generation` (gauge) | | the config generation served: 1 at start, one more per reload |
//! | `llm_fallback_config_info` (gauge, 1) | `config_hash` | the hash of the config served |
//!
//! "call" is `gen_ai_request_model` (the route or model asked for),
//! `gen_ai_response_model` (the model that served, empty if none) and
//! `gen_ai_provider_name` (its provider); "model" is `gen_ai_request_model`
//! (the `provider/model` called) and `gen_ai_provider_name`. Model labels
//! take only the listed models, route aliases and candidates; any other
//! (a client's made-up model, an unlisted one passed through) is `other`, so
//! clients cannot create series. A cancelled call's status is the one it had
//! (0 when nothing was answered yet).
//!
//! [`ServerBuilder::build_live`] also returns a [`LiveHandle`] that swaps
//! the stack, models, routes and health served while the server runs: each
//! request takes the active generation at its start and keeps it to its end,
//! so calls and streams in flight finish on the stack they started on
//! (the gateway's reload, `stack::Reloader`, uses it).
//!
//! [`serve`] runs a router with a graceful shutdown that bounds how long
//! in-flight streams may take; [`shutdown_signal`] resolves on SIGINT or
//! SIGTERM.
//!
//! # Example
//!
//! ```
//! use http::{header, Request, StatusCode};
//! use llm_fallback::mock::{MockProvider, MockReply};
//! use llm_fallback::server::{Server, MODEL_HEADER};
//! use llm_fallback::ErrorKind;
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! // Any stack works; here a scripted provider stands in for one.
//! let stack = MockProvider::new();
//! stack.always("openai/gpt-4o-mini", MockReply::text("hello"));
//! stack.always("azure/gpt-4o-mini", MockReply::error(ErrorKind::RateLimited));
//!
//! let app = Server::builder(stack)
//!     .route("fast", ["openai/gpt-4o-mini", "azure/gpt-4o-mini"])
//!     .models(["openai/gpt-4o-mini", "azure/gpt-4o-mini"])
//!     .api_key("sk-local-test")
//!     .build()
//!     .expect("valid server options");
//!
//! let request = Request::post("/v1/chat/completions")
//!     .header(header::AUTHORIZATION, "Bearer sk-local-test")
//!     .header(header::CONTENT_TYPE, "application/json")
//!     .body(r#"{"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}"#.to_owned())
//!     .unwrap();
//! let response = app.clone().oneshot(request).await.unwrap();
//! assert_eq!(response.status(), StatusCode::OK);
//! assert_eq!(response.headers()[MODEL_HEADER], "openai/gpt-4o-mini");
//!
//! let request = Request::post("/v1/chat/completions")
//!     .header(header::AUTHORIZATION, "Bearer sk-local-test")
//!     .header(header::CONTENT_TYPE, "application/json")
//!     .body(r#"{"model": "azure/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}"#.to_owned())
//!     .unwrap();
//! let response = app.oneshot(request).await.unwrap();
//! assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
//! # }
//! ```
//!
//! Serving it on a socket until SIGINT or SIGTERM, letting in-flight streams
//! finish for up to 20 seconds:
//!
//! ```no_run
//! # use llm_fallback::{mock::MockProvider, server::{self, Server}};
//! # use std::time::Duration;
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let stack = MockProvider::new();
//! let app = Server::builder(stack).build()?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! server::serve(listener, app, server::shutdown_signal(), Duration::from_secs(20)).await;
//! # Ok(()) }
//! ```
//!
//! To mount it in an existing app next to your own routes, `merge` the
//! router: `Router::new().route("/", get(home)).merge(app)`.

mod admin;
mod auth;
mod builder;
mod chat;
mod error;
mod handle;
mod headers;
mod info;
mod live;
mod metrics;
mod request_log;
mod serve;
mod sse;
mod trace;

use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::routing::{get, post};
use axum::Router;

use crate::BoxChatService;

pub use builder::{ServerBuilder, DEFAULT_BODY_LIMIT};
pub use error::ApiError;
pub use handle::LiveHandle;
pub use headers::{
    ATTEMPTS_HEADER, FALLBACKS_HEADER, HEDGES_HEADER, MODEL_HEADER, SHOULD_RETRY_HEADER,
};
pub use live::{Generation, ReloadFuture};
pub use serve::{serve, shutdown_signal};

/// Builds the OpenAI-compatible [`Router`] for a stack: start with
/// [`Server::builder`].
#[derive(Debug)]
#[non_exhaustive]
pub struct Server {}

impl Server {
    /// Starts configuring a server in front of `stack`.
    pub fn builder<S>(stack: S) -> ServerBuilder
    where
        S: tower_service::Service<
                crate::ChatRequest,
                Response = crate::ChatResponse,
                Error = crate::ChatError,
            > + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        ServerBuilder::new(BoxChatService::new(stack))
    }
}

/// What the handlers share.
pub(crate) struct App {
    /// What the server serves now; each request loads it once.
    live: Arc<ArcSwap<live::Active>>,
    body_limit: usize,
    /// The series recorded when calls end, if the server serves `/metrics`.
    metrics: Option<Arc<metrics::Metrics>>,
    /// What `POST /admin/reload` calls, if it is served.
    reload: Option<live::ReloadFn>,
}

/// `metrics_open`: `GET /metrics` (served when `app` has metrics) needs no
/// key, like `/health`.
/// The API router, and `/metrics` on a router of its own when `apart`.
fn router(
    app: App,
    keys: auth::ApiKeys,
    metrics_open: bool,
    apart: bool,
) -> (Router, Option<Router>) {
    let app = Arc::new(app);
    let scrape = app.metrics.clone().map(|m| {
        Router::new()
            .route("/metrics", get(metrics::scrape))
            .with_state(m)
    });
    // Readiness lists every route, model and cooldown: behind the key, like
    // the API. Liveness stays open for load balancers.
    let mut api = Router::new()
        .route("/v1/chat/completions", post(chat::chat_completions))
        .route("/v1/models", get(info::list_models))
        .route("/v1/models/{*id}", get(info::get_model))
        .route("/health/ready", get(info::ready))
        .with_state(app.clone());
    if app.reload.is_some() {
        api = api.route("/admin/reload", post(admin::reload).with_state(app.clone()));
    }
    let mut open = Router::new()
        .route("/health", get(info::live))
        .with_state(app);
    let guard = |router: Router| match keys.is_empty() {
        true => router,
        false => router.layer(axum::middleware::from_fn_with_state(
            keys.clone(),
            auth::require_key,
        )),
    };
    let mut own = None;
    match scrape {
        Some(scrape) if apart => {
            let scrape = if metrics_open { scrape } else { guard(scrape) };
            own = Some(
                scrape
                    .fallback(info::unknown_url)
                    .method_not_allowed_fallback(info::wrong_method),
            );
        }
        Some(scrape) if metrics_open => open = open.merge(scrape),
        Some(scrape) => api = api.merge(scrape),
        None => {}
    }
    let api = guard(api);
    let main = open
        .merge(api)
        .fallback(info::unknown_url)
        .method_not_allowed_fallback(info::wrong_method);
    (main, own)
}
