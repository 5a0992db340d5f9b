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
    let (stack, router, reloader) = match from {
        From::File(path) => match Reloader::open(path) {
            Ok(reloader) => (reloader.stack(), reloader.router(), Some(reloader)),
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
            match stack.server().build() {
                Ok(router) => (stack, router, None),
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
    let grace = stack.shutdown_grace().unwrap_or(DEFAULT_GRACE);
    server::serve(listener, router, server::shutdown_signal(), grace).await;
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
