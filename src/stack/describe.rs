//! The one-line description `llm-fallback check` prints of the server
//! settings (names of variables, never their values).

use crate::config::{Config, HumanDuration, ServerSetup};

/// The `[server]` section in one line:
/// `listen 127.0.0.1:8080; client key from GATEWAY_API_KEY; body limit 4194304 bytes; shutdown grace 20s`.
pub(super) fn server(config: &Config, s: &ServerSetup) -> String {
    let listen = s
        .listen
        .map_or("listen not set".to_owned(), |a| format!("listen {a}"));
    let key = match &config.server.api_key_env {
        Some(var) => format!("client key from {var}"),
        None => "no client key (open to anyone who can connect)".to_owned(),
    };
    let limit = s.body_limit.map_or("body limit default".to_owned(), |n| {
        format!("body limit {n} bytes")
    });
    let grace = s
        .shutdown_grace
        .map_or("shutdown grace default".to_owned(), |d| {
            format!("shutdown grace {}", HumanDuration::from(d))
        });
    let unlisted = if s.allow_unlisted {
        "; unlisted models allowed"
    } else {
        ""
    };
    // Said only when not the default (/metrics on, behind the key).
    let metrics = match (s.metrics, s.metrics_auth) {
        (false, _) => "; no /metrics",
        (true, false) => "; /metrics open without the key",
        (true, true) => "",
    };
    let metrics_at = match s.metrics_listen.filter(|_| s.metrics) {
        Some(addr) => format!("; /metrics on {addr}"),
        None => String::new(),
    };
    let admin = if s.admin_reload {
        "; POST /admin/reload on"
    } else {
        ""
    };
    format!("{listen}; {key}; {limit}; {grace}{unlisted}{metrics}{metrics_at}{admin}")
}
