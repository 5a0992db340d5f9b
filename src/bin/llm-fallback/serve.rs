//! `llm-fallback serve`: the gateway on a socket until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use llm_fallback::server;
use llm_fallback::{Config, Stack};

use crate::{fail, Env};

/// Where the gateway listens without `--listen` or `server.listen`.
pub(crate) const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// How long in-flight answers may finish on shutdown without `server.shutdown_grace`.
const DEFAULT_GRACE: Duration = Duration::from_secs(20);

/// Serves `config` (from `source`); `demo` prints how to try the embedded default.
pub(crate) async fn run(
    config: &Config,
    source: &str,
    env: Env,
    listen: Option<SocketAddr>,
    demo: bool,
) -> ExitCode {
    let built = Stack::builder()
        .config(config.clone())
        .env(move |var| env(var))
        .build();
    let stack = match built {
        Ok(stack) => stack,
        Err(e) => {
            let n = e.problems().len();
            let s = if n == 1 { "" } else { "s" };
            return fail(&format!(
                "{n} problem{s} in {source} (`llm-fallback check` lists the variables it reads):\n{e}"
            ));
        }
    };
    let addr = listen
        .or(stack.listen_addr())
        .unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("a valid address"));
    let router = match stack.server().build() {
        Ok(router) => router,
        Err(e) => return fail(&format!("server options in {source}:\n{e}")),
    };
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(e) => return fail(&format!("cannot listen on {addr}: {e}")),
    };
    let addr = listener.local_addr().unwrap_or(addr);
    let routes: Vec<&str> = stack.routes().keys().map(String::as_str).collect();
    tracing::info!(%addr, config = %source, routes = %routes.join(", "), "gateway listening");
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
