//! `llm-fallback serve`: the gateway on a socket until SIGINT or SIGTERM,
//! reloading its config file on SIGHUP, when the file is saved, and on
//! `POST /admin/reload` (with `server.admin_reload`).

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use llm_fallback::server;
use llm_fallback::stack::Reloader;
use llm_fallback::{Config, ConfigError, Stack};

use crate::{fail, Env};

/// Where the gateway listens without `--listen` or `server.listen`.
pub(crate) const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// How long in-flight answers may finish on shutdown without `server.shutdown_grace`.
const DEFAULT_GRACE: Duration = Duration::from_secs(20);

/// Where the config comes from.
pub(crate) enum From<'a> {
    /// A file: reloaded on SIGHUP, when saved, and by `POST /admin/reload`.
    File(&'a Path),
    /// A config read once: the embedded demo (`demo`), or one translated
    /// from a LiteLLM file, whose variables `env` reads.
    Fixed {
        config: &'a Config,
        env: Env,
        demo: bool,
    },
}

/// Serves the config `from` (`source` names it in messages).
pub(crate) async fn run(from: From<'_>, source: &str, listen: Option<SocketAddr>) -> ExitCode {
    let problems = |e: ConfigError| {
        let n = e.problems().len();
        let s = if n == 1 { "" } else { "s" };
        fail(&format!(
            "{n} problem{s} in {source} (`llm-fallback check` lists the variables it reads):\n{e}"
        ))
    };
    let demo = matches!(from, From::Fixed { demo: true, .. });
    let (stack, router, metrics, reloader) = match from {
        From::File(path) => match Reloader::open(path) {
            Ok(r) => (r.stack(), r.router(), r.metrics_router(), Some(r)),
            Err(e) => return problems(e),
        },
        From::Fixed { config, env, .. } => {
            let built = Stack::builder()
                .config(config.clone())
                .env(move |var| env(var))
                .build();
            let stack = match built {
                Ok(stack) => stack,
                Err(e) => return problems(e),
            };
            match stack.server().build_live() {
                Ok((router, live)) => (stack, router, live.metrics_router(), None),
                Err(e) => return fail(&format!("server options in {source}:\n{e}")),
            }
        }
    };
    let addr = listen
        .or(stack.listen_addr())
        .unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("a valid address"));
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(e) => return fail(&format!("cannot listen on {addr}: {e}")),
    };
    let addr = listener.local_addr().unwrap_or(addr);
    let grace = stack.shutdown_grace().unwrap_or(DEFAULT_GRACE);
    // `/metrics` on an address of its own (`server.metrics_listen`).
    let mut metrics_addr = None;
    let scraper = match (metrics, stack.metrics_listen_addr()) {
        (Some(metrics), Some(at)) => match tokio::net::TcpListener::bind(at).await {
            Ok(listener) => {
                metrics_addr = Some(listener.local_addr().unwrap_or(at));
                let serve = server::serve(listener, metrics, server::shutdown_signal(), grace);
                Some(tokio::spawn(serve))
            }
            Err(e) => {
                return fail(&format!(
                    "cannot listen on {at} (server.metrics_listen): {e}"
                ))
            }
        },
        _ => None,
    };
    // Before the first log line, so a SIGHUP sent once it is seen is handled.
    let _watch = match &reloader {
        Some(reloader) => {
            #[cfg(unix)]
            if let Err(e) = reloader.reload_on_sighup() {
                tracing::warn!(error = %e, "cannot listen for SIGHUP: no reload on it");
            }
            match reloader.watch() {
                Ok(watch) => Some(watch),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot watch the config file: reload with SIGHUP");
                    None
                }
            }
        }
        None => {
            fixed_hangup(demo);
            None
        }
    };
    let routes: Vec<&str> = stack.routes().keys().map(String::as_str).collect();
    tracing::info!(
        %addr,
        config = %source,
        config_hash = %stack.config_hash(),
        metrics_addr = metrics_addr.map(tracing::field::display),
        routes = %routes.join(", "),
        "gateway listening"
    );
    if demo {
        println!(
            "\nTry it (no API key needed; every other answer falls back to steady):\n  \
             curl -si http://{addr}/v1/chat/completions -H 'content-type: application/json' \
             -d '{{\"model\": \"demo\", \"messages\": [{{\"role\": \"user\", \"content\": \"hi\"}}]}}'\n"
        );
    }
    server::serve(listener, router, server::shutdown_signal(), grace).await;
    if let Some(scraper) = scraper {
        scraper.abort();
    }
    tracing::info!("gateway stopped");
    ExitCode::SUCCESS
}

/// The embedded demo and a translated LiteLLM config are not read again: a
/// SIGHUP says so instead of ending the process (its default action).
fn fixed_hangup(demo: bool) {
    #[cfg(not(unix))]
    let _ = demo;
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hangup) = signal(SignalKind::hangup()) else {
            return;
        };
        tokio::spawn(async move {
            while hangup.recv().await.is_some() {
                if demo {
                    tracing::warn!(
                        "SIGHUP received: the embedded demo has no config file to reload"
                    );
                } else {
                    tracing::warn!("SIGHUP received: a LiteLLM config is not reloaded (restart, or serve its --print output with --config)");
                }
            }
        });
    }
}
