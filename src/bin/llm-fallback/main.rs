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
//! stops it gracefully; SIGHUP, a save of the config file, or `POST
//! /admin/reload` (with `server.admin_reload`) reloads it.

mod args;
mod check;
mod demo;
mod logs;
mod serve;

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
    logs::init(args.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => return fail(&format!("cannot start the runtime: {e}")),
    };
    runtime.block_on(run(args))
}

async fn run(args: args::Args) -> ExitCode {
    // The demo's simulated providers live as long as `demo`.
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
        .map_or("the embedded demo".to_owned(), |p| p.display().to_string());
    match args.command {
        Command::Check => check::run(&config, &source),
        _ => {
            let from = match &args.config {
                Some(path) => serve::From::File(path),
                None => serve::From::Demo(&config),
            };
            serve::run(from, &source, args.listen).await
        }
    }
}

/// Reports `message` on stderr and fails.
pub(crate) fn fail(message: &str) -> ExitCode {
    eprintln!("llm-fallback: {message}");
    ExitCode::FAILURE
}
