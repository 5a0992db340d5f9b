//! The embedded demo of the gateway: two simulated providers on 127.0.0.1,
//! one of them flaky, so fallback can be watched with `curl` on a machine
//! without any API key.

use std::time::Duration;

use llm_fallback::mock::{MockServer, ServerReply};
use llm_fallback::{Config, ConfigError};
use tokio::task::JoinHandle;

/// The model both simulated providers serve.
pub const MODEL: &str = "gpt-4o-mini";

/// The config of the embedded default. The providers' `base_url` is filled
/// in at start-up with the simulated providers' addresses.
pub const DEFAULT_CONFIG: &str = r#"
# Two simulated OpenAI-compatible providers (base_url set at start-up).
[providers.flaky]
kind = "openai"
[providers.steady]
kind = "openai"

[routes]
# Flaky first; steady whenever flaky fails or is cooling down.
demo = ["flaky/gpt-4o-mini", "steady/gpt-4o-mini"]
# Half the calls start on each; a failed draw moves to the other one.
balanced = { weights = { "flaky/gpt-4o-mini" = 1, "steady/gpt-4o-mini" = 1 } }

[timeout]
total = "30s"
attempt = "10s"

[retry]
# Fail over from flaky at once; retry steady once.
max_retries = { default = 1, models = { "flaky/gpt-4o-mini" = 0 } }
backoff = { base = "100ms", cap = "1s" }

[cooldown]
consecutive_failures = 3
cooldown = "5s"
"#;

/// What flaky answers, in a cycle: it fails every other call (a 503, then
/// a 500). Never a 429 or three failures in a row, which would cool it down
/// for a while: then how often answers fall back would depend on how fast
/// the user types, and the demo's promise is "every other answer".
fn flaky_cycle() -> [ServerReply; 4] {
    let ok = ServerReply::text("Hello from the flaky provider, lucky this time.");
    [
        ServerReply::error(503, "overloaded", "flaky is overloaded"),
        ok.clone(),
        ServerReply::error(500, "server_error", "flaky had a hiccup"),
        ok,
    ]
}

/// How many cycles are queued at a time.
const CYCLES: usize = 256;

/// The running simulated providers and the config pointing at them.
#[derive(Debug)]
pub struct Demo {
    /// The embedded config, with the providers' addresses filled in.
    pub config: Config,
    /// Keeps the script filled; it holds the servers, which stop when it ends.
    refill: JoinHandle<()>,
}

impl Drop for Demo {
    fn drop(&mut self) {
        self.refill.abort();
    }
}

/// Starts the simulated providers on 127.0.0.1 (free ports).
pub async fn start() -> Result<Demo, ConfigError> {
    let bind = |e: std::io::Error| ConfigError::new("demo", format!("cannot bind 127.0.0.1: {e}"));
    let flaky = MockServer::try_start().await.map_err(bind)?;
    let steady = MockServer::try_start().await.map_err(bind)?;
    steady.always(MODEL, ServerReply::text("Hello from the steady provider."));
    flaky.script(MODEL, flaky_cycle().into_iter().cycle().take(4 * CYCLES));

    let mut config = Config::from_toml_str(DEFAULT_CONFIG)?;
    for (name, server) in [("flaky", &flaky), ("steady", &steady)] {
        if let Some(provider) = config.providers.get_mut(name) {
            provider.base_url = Some(server.base_url());
        }
    }
    let refill = tokio::spawn(refill(flaky.clone(), steady.clone()));
    Ok(Demo { config, refill })
}

/// Keeps flaky's script from running dry, and the recorded calls (bodies
/// included) from piling up in a long-running demo.
async fn refill(flaky: MockServer, steady: MockServer) {
    let mut queued = 4 * CYCLES;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        queued = queued.saturating_sub(flaky.call_count(MODEL));
        flaky.clear_calls();
        steady.clear_calls();
        if queued < 2 * CYCLES {
            flaky.script(MODEL, flaky_cycle().into_iter().cycle().take(4 * CYCLES));
            queued += 4 * CYCLES;
        }
    }
}
