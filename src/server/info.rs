//! `GET /v1/models`, `GET /health` and `GET /health/ready`, and the OpenAI-shaped
//! answers to unknown URLs and methods.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::{header, Method, StatusCode, Uri};
use serde::Serialize;
use serde_json::json;
use tokio::time::Instant;

use super::error::{ceil_secs, ApiError};
use super::App;
use crate::chat::split_model_id;

/// One entry of `GET /v1/models`.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct ModelEntry {
    id: String,
    object: &'static str,
    created: u64,
    owned_by: String,
}

impl ModelEntry {
    /// `owned_by` is the provider of a `provider/model` id; aliases belong to
    /// the gateway itself.
    pub(crate) fn new(id: String, created: u64) -> Self {
        let owned_by = split_model_id(&id)
            .map_or("llm-fallback", |(p, _)| p)
            .to_owned();
        ModelEntry {
            id,
            object: "model",
            created,
            owned_by,
        }
    }

    pub(crate) fn id(&self) -> &str {
        &self.id
    }
}

fn json_response(status: StatusCode, body: &impl Serialize) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => (status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

pub(crate) async fn list_models(State(app): State<Arc<App>>) -> Response {
    let active = app.live.load();
    json_response(
        StatusCode::OK,
        &json!({ "object": "list", "data": &*active.models }),
    )
}

pub(crate) async fn get_model(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    let active = app.live.load();
    match active.models.iter().find(|m| m.id == id) {
        Some(entry) => json_response(StatusCode::OK, entry),
        None => ApiError::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            Some("model_not_found"),
            format!("The model `{id}` does not exist."),
        )
        .with_param("model")
        .into_response(),
    }
}

/// Liveness: the process answers.
pub(crate) async fn live() -> Response {
    json_response(StatusCode::OK, &json!({ "status": "ok" }))
}

#[derive(Serialize)]
struct RouteHealth<'a> {
    available: Vec<&'a str>,
    /// Seconds (rounded up) until each cooling candidate accepts calls again.
    cooling: BTreeMap<&'a str, u64>,
}

/// Readiness: some configured route has a candidate that is not cooling
/// down. 503 with `Retry-After` (the first candidate's reopening) otherwise.
/// The body also names the config generation served and its hash.
pub(crate) async fn ready(State(app): State<Arc<App>>) -> Response {
    let app = app.live.load_full();
    let now = Instant::now();
    let mut routes = BTreeMap::new();
    let mut ready = app.routes.is_empty();
    let mut next_open: Option<Duration> = None;
    for (alias, candidates) in app.routes.iter() {
        let mut health = RouteHealth {
            available: Vec::new(),
            cooling: BTreeMap::new(),
        };
        for model in candidates {
            match app.health.cooling_until(model).filter(|until| *until > now) {
                None => health.available.push(model),
                Some(until) => {
                    let left = until - now;
                    next_open = Some(next_open.map_or(left, |n| n.min(left)));
                    health.cooling.insert(model, ceil_secs(left));
                }
            }
        }
        ready |= !health.available.is_empty();
        routes.insert(alias.as_str(), health);
    }
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let text = if ready { "ready" } else { "unavailable" };
    let g = &app.generation;
    let config = json!({ "generation": g.number, "hash": g.hash, "loaded_at": g.loaded_at_unix() });
    let body = json!({ "status": text, "routes": routes, "config": config });
    let mut response = json_response(status, &body);
    if let (false, Some(wait)) = (ready, next_open) {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, ceil_secs(wait).into());
    }
    response
}

pub(crate) async fn unknown_url(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        Some("unknown_url"),
        format!("Unknown request URL: {method} {}.", uri.path()),
    )
}

pub(crate) async fn wrong_method(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "invalid_request_error",
        Some("method_not_allowed"),
        format!("{method} is not supported for {}.", uri.path()),
    )
}
