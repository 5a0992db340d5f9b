//! The one-line descriptions `llm-fallback check` prints of fallback groups
//! and server settings (names of variables, never their values).

use crate::config::{Config, HumanDuration, Resolved, ROUTE_PREFIX};

/// One line per fallback group and kind route:
/// `group: azure/gpt-4o <-> openai/gpt-4o`, `route fast: a -> b`,
/// `context window exceeded: gpt-4o -> openai/gpt-4.1`; `none` without any.
pub(super) fn fallback_groups(config: &Config, plan: &Resolved) -> String {
    let mut lines = Vec::new();
    for g in plan.groups.entries() {
        let (what, sep) = if g.route {
            ("route", " -> ")
        } else {
            ("group", " <-> ")
        };
        let name = g.name.as_deref().map_or(String::new(), |n| format!(" {n}"));
        lines.push(format!("{what}{name}: {}", g.models.join(sep)));
    }
    for (label, route) in [
        ("context window exceeded", &plan.context_window),
        ("content filter", &plan.content_filter),
    ] {
        if !route.global.is_empty() {
            lines.push(format!("{label}: any -> {}", route.global.join(", ")));
        }
        for (model, list) in &route.per_model {
            // A weighted route's alias is keyed as the balance layer sees it.
            let model = (model.strip_prefix(ROUTE_PREFIX))
                .and_then(|m| m.strip_prefix('/'))
                .unwrap_or(model);
            lines.push(format!("{label}: {model} -> {}", list.join(", ")));
        }
    }
    if let Some(n) = config.fallback.max_fallbacks {
        lines.push(format!("at most {n} fallbacks per call"));
    }
    if lines.is_empty() {
        lines.push("none".to_owned());
    }
    lines.join("\n") + "\n"
}

/// The `[server]` section in one line:
/// `listen 127.0.0.1:8080; client key from GATEWAY_API_KEY; body limit 4194304 bytes; shutdown grace 20s`.
pub(super) fn server(config: &Config, plan: &Resolved) -> String {
    let s = &plan.server;
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
    format!("{listen}; {key}; {limit}; {grace}{unlisted}")
}
