//! An OpenAI-compatible gateway in front of several providers, built from a
//! config file: point any OpenAI client at it and get timeouts, retries,
//! cooldowns, weighted balancing and fallback across providers.
//!
//! ```text
//! cargo run --example gateway                                   # embedded default: simulated providers, no key needed
//! cargo run --example gateway -- --config examples/gateway.toml # real providers (keys from the environment)
//! cargo run --example gateway -- --config my.toml --check       # validate, print providers and routes, exit
//! cargo run --example gateway -- --listen 0.0.0.0:9000
//! ```
//!
//! With the embedded default, watch the fallback happen:
//!
//! ```text
//! curl -si localhost:8080/v1/chat/completions -H 'content-type: application/json' \
//!   -d '{"model": "demo", "messages": [{"role": "user", "content": "hi"}]}'
//! ```
//!
//! Every other answer comes from `steady/gpt-4o-mini` (see the
//! `x-llm-fallback-model` and `x-llm-fallback-fallbacks` headers). One log
//! line per request (route, served model, attempts, status, latency; never
//! keys or message content); `RUST_LOG` changes what is logged. SIGINT or
//! SIGTERM stops it gracefully.

mod demo;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use llm_fallback::server;
use llm_fallback::{Config, Stack};
use tracing_subscriber::EnvFilter;

const USAGE: &str = "\
usage: gateway [--config PATH] [--listen ADDR] [--check]

  --config PATH   a .toml or .json config (default: the embedded demo with simulated providers)
  --listen ADDR   the address to serve on (default: server.listen, else 127.0.0.1:8080)
  --check         validate the config, print its providers, routes and store, and exit (non-zero on any problem)";

const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
const DEFAULT_GRACE: Duration = Duration::from_secs(20);

#[derive(Debug, Default)]
struct Args {
    config: Option<PathBuf>,
    listen: Option<SocketAddr>,
    check: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args::default();
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag.to_owned(), Some(value.to_owned())),
            None => (arg.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag.as_str() {
            "--config" => args.config = Some(value("--config")?.into()),
            "--listen" => {
                let addr = value("--listen")?;
                let addr = addr.parse().map_err(|_| {
                    format!("--listen: {addr:?} is not an address like 127.0.0.1:8080")
                })?;
                args.listen = Some(addr);
            }
            "--check" => args.check = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_target(false)
        .init();
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("gateway: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };

    // The demo's simulated providers live as long as `_demo`.
    let (config, _demo) = match &args.config {
        Some(path) => match Config::from_path(path) {
            Ok(config) => (config, None),
            Err(e) => return fail(&e.to_string()),
        },
        None => match demo::start().await {
            Ok(demo) => (demo.config.clone(), Some(demo)),
            Err(e) => return fail(&e.to_string()),
        },
    };
    let source = args
        .config
        .as_ref()
        .map_or("the embedded default".to_owned(), |p| {
            p.display().to_string()
        });
    let stack = match Stack::from_config(&config) {
        Ok(stack) => stack,
        Err(e) => {
            let n = e.problems().len();
            let s = if n == 1 { "" } else { "s" };
            return fail(&format!("{n} problem{s} in {source}:\n{e}"));
        }
    };
    if args.check {
        println!(
            "{source} is valid. Providers:\n{}",
            stack.describe_providers()
        );
        println!("Routes:\n{}", stack.describe_routes());
        println!("Store: {}", stack.describe_store());
        println!("Timeouts: {}", stack.describe_timeouts());
        println!("Models served: {}", stack.models().join(", "));
        return ExitCode::SUCCESS;
    }

    let addr = args
        .listen
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
    tracing::info!(%addr, config = %source, "gateway listening; routes: {}", stack.routes().keys().cloned().collect::<Vec<_>>().join(", "));
    if _demo.is_some() {
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

fn fail(message: &str) -> ExitCode {
    eprintln!("gateway: {message}");
    ExitCode::FAILURE
}
