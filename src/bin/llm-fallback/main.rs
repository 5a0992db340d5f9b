//! `llm-fallback`: the OpenAI-compatible gateway as a program.
//!
//! ```text
//! llm-fallback                                         # the embedded demo: simulated providers, no key needed
//! llm-fallback serve --config examples/gateway.toml    # real providers (keys from the environment)
//! llm-fallback check --config my.toml                  # validate, print what it builds and the variables it reads
//! llm-fallback serve --litellm-config config.yaml      # a LiteLLM proxy config, as it is
//! llm-fallback check --litellm-config config.yaml --print > gateway.toml   # migrate for good
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
mod traces;

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use args::Command;
use llm_fallback::Config;

/// The allocator: glibc's malloc and free were a sixth of a served call's
/// instructions; mimalloc costs a fraction of that (docs/PERFORMANCE.md).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How the stack reads environment variables.
pub(crate) type Env = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// The process's environment (an empty value counts as unset).
fn process_env(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.is_empty())
}

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
    let mut env: Env = Arc::new(process_env);
    // The demo's simulated providers live as long as `demo`.
    let (config, demo) = match (&args.config, &args.litellm_config) {
        (Some(path), _) => match Config::from_path(path) {
            Ok(config) => (config, None),
            Err(e) => return fail(&e.to_string()),
        },
        (None, Some(path)) => match litellm(path, args.command == Command::Check) {
            Ok((config, file_env)) => {
                env = file_env;
                (config, None)
            }
            Err(e) => return fail(&e),
        },
        (None, None) => match demo::start().await {
            Ok(demo) => (demo.config.clone(), Some(demo)),
            Err(e) => return fail(&e.to_string()),
        },
    };
    let source = match (&args.config, &args.litellm_config) {
        (Some(p), _) => p.display().to_string(),
        // Problems found after translating have the native config's paths.
        (None, Some(p)) => format!("{} (translated)", p.display()),
        (None, None) => "the embedded demo".to_owned(),
    };
    match args.command {
        Command::Check => check::run(&config, &source, env, args.print),
        _ => {
            let from = match &args.config {
                Some(path) => serve::From::File(path),
                None => serve::From::Fixed {
                    config: &config,
                    env,
                    demo: demo.is_some(),
                },
            };
            serve::run(from, &source, args.listen).await
        }
    }
}

/// Translates a LiteLLM config; what it does not honour is one warning (on
/// stderr as it is for `check`, logged for `serve`).
fn litellm(path: &Path, check: bool) -> Result<(Config, Env), String> {
    let shown = path.display();
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("{shown}: cannot read the file: {e}"))?;
    let translated = Config::from_litellm_yaml_with_env(&text, process_env).map_err(|e| {
        let lines: Vec<String> = (e.problems().iter())
            .map(|p| match p.path.as_str() {
                "" => format!("{shown}: {}", p.message),
                at => format!("{shown}: {at}: {}", p.message),
            })
            .collect();
        lines.join("\n")
    })?;
    match (translated.warnings.is_empty(), check) {
        (true, _) => {}
        (false, true) => eprintln!("llm-fallback: warning: {shown}: {}", translated.warnings),
        (false, false) => tracing::warn!(config = %shown, "{}", translated.warnings),
    }
    let env: Env = Arc::new(translated.env(process_env));
    Ok((translated.config, env))
}

/// Reports `message` on stderr and fails.
pub(crate) fn fail(message: &str) -> ExitCode {
    eprintln!("llm-fallback: {message}");
    ExitCode::FAILURE
}
