//! `llm-fallback`: the OpenAI-compatible gateway as a program.
//!
//! ```text
//! llm-fallback                                         # the embedded demo: simulated providers, no key needed
//! llm-fallback serve --config examples/gateway.toml    # real providers (keys from the environment)
//! llm-fallback check --config my.toml                  # validate, print what it builds and the variables it reads
//! llm-fallback --listen 0.0.0.0:9000 --log-format json
//! ```
//!
//! Logs go to stderr (text at a terminal, JSON lines otherwise; `RUST_LOG`
//! filters them), never with keys or message content. SIGINT or SIGTERM
//! stops it gracefully.

mod args;
mod check;
mod demo;
mod logs;
mod serve;
mod traces;

use std::process::ExitCode;

use args::Command;
use llm_fallback::Config;

fn main() -> ExitCode {
    let args = match args::parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("llm-fallback: {e}\n\n{}", args::USAGE);
            return ExitCode::from(2);
        }
    };
    match args.command {
        Command::Help => {
            println!("{}", args::USAGE);
            return ExitCode::SUCCESS;
        }
        Command::Version => {
            println!("llm-fallback {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Command::Serve | Command::Check => {}
    }
    // Only a serving gateway exports; before the runtime, as the exporter
    // runs on threads of its own.
    let endpoint = traces::endpoint().filter(|_| args.command == Command::Serve);
    let (traces, exporter) = match endpoint.clone().map(traces::Traces::start) {
        None => (None, None),
        Some(Ok((traces, layer))) => (Some(traces), Some(layer)),
        Some(Err(e)) => return fail(&e),
    };
    logs::init(args.log_format, exporter);
    if let Some(endpoint) = &endpoint {
        tracing::info!(%endpoint, service = %traces::service_name(), "exporting traces");
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => return fail(&format!("cannot start the runtime: {e}")),
    };
    let code = runtime.block_on(run(args));
    drop(runtime);
    // The spans of the last calls are still buffered.
    if let Some(traces) = traces {
        traces.shutdown();
    }
    code
}

async fn run(args: args::Args) -> ExitCode {
    // The demo's simulated providers live as long as `demo`.
    let (config, demo) = match &args.config {
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
        .map_or("the embedded demo".to_owned(), |p| p.display().to_string());
    match args.command {
        Command::Check => check::run(&config, &source),
        _ => serve::run(&config, &source, args.listen, demo.is_some()).await,
    }
}

/// Reports `message` on stderr and fails.
pub(crate) fn fail(message: &str) -> ExitCode {
    eprintln!("llm-fallback: {message}");
    ExitCode::FAILURE
}
