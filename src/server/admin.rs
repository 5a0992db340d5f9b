//! `POST /admin/reload`: reload the config now, answered with the new
//! generation or every problem of the refused config.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{header, StatusCode};
use serde_json::json;

use super::App;

/// Served only with [`admin_reload`](super::ServerBuilder::admin_reload).
pub(crate) async fn reload(State(app): State<Arc<App>>) -> Response {
    let Some(reload) = &app.reload else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let (status, body) = match reload().await {
        Ok(g) => (
            StatusCode::OK,
            json!({
                "status": "reloaded",
                "generation": g.number,
                "config_hash": g.hash,
                "loaded_at": g.loaded_at_unix(),
            }),
        ),
        Err(e) => {
            let problems: Vec<_> = (e.problems().iter())
                .map(|p| json!({ "path": p.path, "message": p.message }))
                .collect();
            let n = problems.len();
            let active = app.live.load();
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({
                    "error": {
                        "message": format!(
                            "the new config has {n} problem{}: generation {} stays active",
                            if n == 1 { "" } else { "s" },
                            active.generation.number,
                        ),
                        "type": "invalid_request_error",
                        "code": "invalid_config",
                        "param": null,
                    },
                    "problems": problems,
                    "generation": active.generation.number,
                    "config_hash": active.generation.hash,
                }),
            )
        }
    };
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    (status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response()
}
