//! The `llm-fallback` binary as an operator runs it: a real process, its
//! stdout, stderr and exit code, serving on 127.0.0.1:0 in front of mock
//! providers.
#![cfg(feature = "gateway")]

use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::time::Duration;

use llm_fallback::mock::{MockServer, ServerReply};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

const BIN: &str = env!("CARGO_BIN_EXE_llm-fallback");
/// How long the process gets to start or to log a line (a deadline, not a sleep).
const PATIENCE: Duration = Duration::from_secs(20);
const KEY: &str = "sk-cli-test-secret-key";
const SECRET_PROMPT: &str = "my-private-prompt-text";

/// The binary, with no provider or gateway key in its environment.
fn command(args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .kill_on_drop(true);
    for var in [
        "OPENAI_API_KEY",
        "AZURE_OPENAI_API_KEY",
        "ANTHROPIC_API_KEY",
        "GATEWAY_API_KEY",
        "MODEL_FALLBACK_GROUPS",
        "CLI_PRIMARY_KEY",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

async fn output(cmd: &mut Command) -> (Output, String, String) {
    let out = tokio::time::timeout(PATIENCE, cmd.output())
        .await
        .expect("the command ends by itself")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stdout, stderr)
}

/// A config file under the target dir, unique per test.
fn config_file(name: &str, text: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join(format!("cli-{name}-{}.toml", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

/// A running gateway process and its stderr, line by line.
struct Running {
    _child: Child,
    lines: mpsc::UnboundedReceiver<String>,
    seen: Vec<String>,
}

impl Running {
    fn spawn(mut cmd: Command) -> Running {
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                let _ = tx.send(line);
            }
        });
        Running {
            _child: child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Reads stderr until a line satisfies `found`, and returns it.
    async fn until(&mut self, what: &str, found: impl Fn(&str) -> bool) -> String {
        let wait = async {
            while let Some(line) = self.lines.recv().await {
                self.seen.push(line.clone());
                if found(&line) {
                    return line;
                }
            }
            panic!(
                "stderr closed before {what}; it said:\n{}",
                self.seen.join("\n")
            )
        };
        tokio::time::timeout(PATIENCE, wait)
            .await
            .unwrap_or_else(|_| panic!("no {what} within {PATIENCE:?}"))
    }

    /// The address from the JSON "gateway listening" line.
    async fn json_addr(&mut self) -> String {
        let line = self
            .until("listening line", |l| l.contains("gateway listening"))
            .await;
        let v: Value = serde_json::from_str(&line).unwrap();
        v["addr"].as_str().unwrap().to_owned()
    }
}

async fn chat(addr: &str, model: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("http://{addr}/v1/chat/completions"))
        .bearer_auth("gw-secret")
        .json(&serde_json::json!({
            "model": model,
            "messages": [{ "role": "user", "content": SECRET_PROMPT }],
        }))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn serve_logs_json_lines_on_stderr_without_keys_or_content() {
    let primary = MockServer::start().await;
    primary.always(
        "gpt-4o-mini",
        ServerReply::error(503, "overloaded", "primary down"),
    );
    let backup = MockServer::start().await;
    backup.always("gpt-4o-mini", ServerReply::text("from backup"));
    let config = config_file(
        "json",
        &format!(
            r#"
[providers.primary]
kind = "openai"
base_url = "{}"
api_key_env = "CLI_PRIMARY_KEY"
[providers.backup]
kind = "openai"
base_url = "{}"
[routes]
mini = ["primary/gpt-4o-mini", "backup/gpt-4o-mini"]
[retry]
max_retries = 0
[server]
api_key_env = "GATEWAY_API_KEY"
"#,
            primary.base_url(),
            backup.base_url()
        ),
    );
    let mut cmd = command(&[
        "serve",
        "--log-format",
        "json",
        "--listen",
        "127.0.0.1:0",
        "--config",
        config.to_str().unwrap(),
    ]);
    cmd.env("CLI_PRIMARY_KEY", KEY)
        .env("GATEWAY_API_KEY", "gw-secret")
        .env("RUST_LOG", "debug");
    let mut gw = Running::spawn(cmd);
    let addr = gw.json_addr().await;

    let r = chat(&addr, "mini").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-llm-fallback-model"], "backup/gpt-4o-mini");
    assert_eq!(primary.call_count("gpt-4o-mini"), 1);
    // The request's line names the model that served.
    gw.until("the request's log line", |l| {
        l.contains("backup/gpt-4o-mini")
    })
    .await;

    for line in &gw.seen {
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        assert!(
            v["level"].is_string() && v["timestamp"].is_string(),
            "{line}"
        );
        assert!(!line.contains('\x1b'), "colours in a JSON line: {line}");
        assert!(
            !line.contains(KEY) && !line.contains("gw-secret"),
            "a key: {line}"
        );
        assert!(!line.contains(SECRET_PROMPT), "message content: {line}");
    }
}

#[tokio::test]
async fn without_a_terminal_logs_are_json_and_the_demo_serves_without_keys() {
    let mut gw = Running::spawn(command(&["--listen", "127.0.0.1:0"]));
    let addr = gw.json_addr().await;
    let r = chat(&addr, "demo").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-llm-fallback-model"], "steady/gpt-4o-mini");
    assert_eq!(r.headers()["x-llm-fallback-fallbacks"], "1");
    let r = chat(&addr, "demo").await;
    assert_eq!(r.headers()["x-llm-fallback-model"], "flaky/gpt-4o-mini");
}

#[tokio::test]
async fn text_logs_have_no_colours_when_stderr_is_not_a_terminal() {
    let mut gw = Running::spawn(command(&["--log-format=text", "--listen", "127.0.0.1:0"]));
    let line = gw
        .until("listening line", |l| l.contains("gateway listening"))
        .await;
    assert!(line.contains("INFO"), "{line}");
    assert!(!line.contains('\x1b'), "colours: {line:?}");
    assert!(serde_json::from_str::<Value>(&line).is_err(), "{line}");
}

#[tokio::test]
async fn check_lists_every_problem_and_every_missing_variable() {
    let config = config_file(
        "invalid",
        r#"
[providers.openai]
kind = "openai"
api_key_env = "OPENAI_API_KEY"
[providers.anthropic]
kind = "anthropic"
api_key_env = "ANTHROPIC_API_KEY"
[routes]
mini = ["openai/gpt-4o-mini", "nowhere/gpt-4o-mini"]
[server]
api_key_env = "GATEWAY_API_KEY"
"#,
    );
    let mut cmd = command(&["check", "--config", config.to_str().unwrap()]);
    cmd.env("GATEWAY_API_KEY", "gw-secret");
    let (out, stdout, stderr) = output(&mut cmd).await;
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stderr.contains("3 problems in"), "{stderr}");
    for problem in [
        "providers.openai.api_key_env: environment variable OPENAI_API_KEY is not set",
        "providers.anthropic.api_key_env: environment variable ANTHROPIC_API_KEY is not set",
        "routes.mini",
    ] {
        assert!(
            stderr.contains(problem),
            "{problem} missing from:\n{stderr}"
        );
    }
    assert!(
        stdout.contains("  ANTHROPIC_API_KEY  MISSING\n"),
        "{stdout}"
    );
    assert!(stdout.contains("  GATEWAY_API_KEY    set\n"), "{stdout}");
    assert!(
        stdout.contains("  OPENAI_API_KEY     MISSING\n"),
        "{stdout}"
    );
    assert!(!stdout.contains("gw-secret") && !stderr.contains("gw-secret"));
}

#[tokio::test]
async fn check_prints_groups_server_settings_and_variables_of_the_example_config() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/gateway.toml");
    let mut cmd = command(&["check", "--config", path]);
    for var in [
        "OPENAI_API_KEY",
        "AZURE_OPENAI_API_KEY",
        "ANTHROPIC_API_KEY",
        "GATEWAY_API_KEY",
    ] {
        cmd.env(var, "k-test");
    }
    let (out, stdout, stderr) = output(&mut cmd).await;
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("examples/gateway.toml is valid."),
        "{stdout}"
    );
    assert!(
        stdout.contains("Fallback groups:\ngroup: azure/gpt-4o <-> openai/gpt-4o\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("context window exceeded: gpt-4o -> openai/gpt-4.1\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Server: listen 127.0.0.1:8080; client key from GATEWAY_API_KEY; body limit 4194304 bytes; shutdown grace 20s\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  MODEL_FALLBACK_GROUPS  not set (optional)\n"),
        "{stdout}"
    );
    assert!(!stdout.contains("MISSING"), "{stdout}");
    assert!(!stdout.contains("k-test"), "a key in the output:\n{stdout}");
}

#[tokio::test]
async fn version_help_and_bad_arguments() {
    let (out, stdout, _) = output(&mut command(&["version"])).await;
    assert!(out.status.success());
    assert_eq!(
        stdout,
        format!("llm-fallback {}\n", env!("CARGO_PKG_VERSION"))
    );
    let (out, stdout, _) = output(&mut command(&["--help"])).await;
    assert!(out.status.success());
    assert!(stdout.contains("usage: llm-fallback [COMMAND] [OPTIONS]"));
    let (out, _, stderr) = output(&mut command(&["serve", "--confg", "x.toml"])).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("unknown argument \"--confg\""), "{stderr}");
}

/// `server.metrics_listen`: `/metrics` on an address of its own (behind the
/// client key, as beside the API), and not beside the API.
#[tokio::test]
async fn metrics_listen_serves_metrics_on_their_own_address() {
    let upstream = MockServer::start().await;
    upstream.always("gpt-4o-mini", ServerReply::text("hello"));
    let config = config_file(
        "metrics-listen",
        &format!(
            r#"
[providers.up]
kind = "openai"
base_url = "{}"
[routes]
mini = ["up/gpt-4o-mini"]
[server]
api_key_env = "GATEWAY_API_KEY"
metrics_listen = "127.0.0.1:0"
"#,
            upstream.base_url()
        ),
    );
    let mut cmd = command(&[
        "serve",
        "--log-format",
        "json",
        "--listen",
        "127.0.0.1:0",
        "--config",
        config.to_str().unwrap(),
    ]);
    cmd.env("GATEWAY_API_KEY", "gw-secret");
    let mut gw = Running::spawn(cmd);
    let line = gw
        .until("listening line", |l| l.contains("gateway listening"))
        .await;
    let v: Value = serde_json::from_str(&line).unwrap();
    let addr = v["addr"].as_str().unwrap().to_owned();
    let metrics_addr = v["metrics_addr"].as_str().unwrap().to_owned();
    assert_ne!(addr, metrics_addr);
    assert_eq!(chat(&addr, "mini").await.status(), 200);

    let client = reqwest::Client::new();
    let beside = client
        .get(format!("http://{addr}/metrics"))
        .bearer_auth("gw-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(beside.status(), 404);
    let open = client
        .get(format!("http://{metrics_addr}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(open.status(), 401);
    let scrape = client
        .get(format!("http://{metrics_addr}/metrics"))
        .bearer_auth("gw-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(scrape.status(), 200);
    let text = scrape.text().await.unwrap();
    assert!(
        text.contains("llm_fallback_requests_total{gen_ai_request_model=\"mini\""),
        "{text}"
    );
    // The API is not served there.
    let api = client
        .get(format!("http://{metrics_addr}/v1/models"))
        .bearer_auth("gw-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 404);
}
