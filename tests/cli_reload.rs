//! The `llm-fallback` binary reloading its config: SIGHUP to a real
//! process serving on 127.0.0.1:0 in front of a mock provider, read back
//! from its JSON log lines and its answers.
#![cfg(all(feature = "gateway", unix))]

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use llm_fallback::mock::{MockServer, ServerReply};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

const BIN: &str = env!("CARGO_BIN_EXE_llm-fallback");
/// How long the process gets to log a line (a deadline, not a sleep).
const PATIENCE: Duration = Duration::from_secs(20);

/// A gateway process, its JSON log lines and its address.
struct Running {
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
    seen: Vec<String>,
}

impl Running {
    fn spawn(args: &[&str]) -> Running {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .args(["--log-format", "json", "--listen", "127.0.0.1:0"])
            .env_remove("RUST_LOG")
            .env("RELOAD_MOCK_KEY", "sk-reload-test")
            .kill_on_drop(true)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                let _ = tx.send(line);
            }
        });
        Running {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Reads log lines until one has `message`, and returns it parsed.
    async fn until(&mut self, message: &str) -> Value {
        let wait = async {
            while let Some(line) = self.lines.recv().await {
                self.seen.push(line.clone());
                let v: Value = serde_json::from_str(&line).unwrap_or_default();
                if v["message"].as_str().is_some_and(|m| m.contains(message)) {
                    return v;
                }
            }
            panic!(
                "stderr closed before {message:?}:\n{}",
                self.seen.join("\n")
            )
        };
        tokio::time::timeout(PATIENCE, wait)
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "no {message:?} within {PATIENCE:?}:\n{}",
                    self.seen.join("\n")
                )
            })
    }

    async fn addr(&mut self) -> String {
        let line = self.until("gateway listening").await;
        line["addr"].as_str().unwrap().to_owned()
    }

    async fn hang_up(&self) {
        let pid = self.child.id().unwrap().to_string();
        let status = Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .await
            .unwrap();
        assert!(status.success());
    }
}

fn config(base: &str, routes: &str) -> String {
    format!(
        "[providers.mock]\nkind = \"openai\"\nbase_url = \"{base}\"\n\
         api_key_env = \"RELOAD_MOCK_KEY\"\n[routes]\n{routes}\n"
    )
}

async fn status(addr: &str, model: &str) -> u16 {
    let body = serde_json::json!({"model": model, "messages": [{"role": "user", "content": "hi"}]});
    let url = format!("http://{addr}/v1/chat/completions");
    let response = reqwest::Client::new()
        .post(url)
        .json(&body)
        .send()
        .await
        .unwrap();
    response.status().as_u16()
}

#[tokio::test]
async fn sighup_and_saves_reload_the_config_and_a_broken_one_is_refused() {
    let mock = MockServer::start().await;
    mock.always("gpt", ServerReply::text("hello"));
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join(format!("cli-reload-{}.toml", std::process::id()));
    std::fs::write(&path, config(&mock.base_url(), "chat = [\"mock/gpt\"]")).unwrap();
    let mut gw = Running::spawn(&["serve", "--config", path.to_str().unwrap()]);
    let addr = gw.addr().await;
    assert_eq!(status(&addr, "extra").await, 404);

    // SIGHUP with the file unchanged: generation 2, nothing changed.
    gw.hang_up().await;
    gw.until("SIGHUP received").await;
    let line = gw.until("config reloaded").await;
    assert_eq!(line["generation"], 2, "{line}");
    assert_eq!(line["routes"], "none", "{line}");

    // A save is seen by the watch, without a signal.
    let routes = "chat = [\"mock/gpt\"]\nextra = [\"mock/gpt\"]";
    std::fs::write(&path, config(&mock.base_url(), routes)).unwrap();
    let line = gw.until("config reloaded").await;
    assert_eq!(line["generation"], 3, "{line}");
    assert_eq!(line["routes"], "+extra", "{line}");
    assert!(line["took_ms"].is_u64(), "{line}");
    assert_eq!(status(&addr, "extra").await, 200);

    // A broken save is refused, by the watch and by a SIGHUP alike.
    std::fs::write(&path, config(&mock.base_url(), "chat = [\"nowhere/gpt\"]")).unwrap();
    let line = gw.until("config reload refused").await;
    assert!(
        line["problems"].as_str().unwrap().contains("routes.chat"),
        "{line}"
    );
    assert_eq!(line["generation"], 3, "{line}");
    gw.hang_up().await;
    gw.until("SIGHUP received").await;
    let line = gw.until("config reload refused").await;
    assert_eq!(line["generation"], 3, "{line}");
    assert_eq!(status(&addr, "extra").await, 200, "the old config stays");
    let _ = std::fs::remove_file(&path);
}

#[tokio::test]
async fn the_demo_says_it_has_nothing_to_reload_and_keeps_serving() {
    let mut gw = Running::spawn(&[]);
    let addr = gw.addr().await;
    gw.hang_up().await;
    gw.until("no config file to reload").await;
    let health = reqwest::get(format!("http://{addr}/health")).await.unwrap();
    assert_eq!(health.status(), 200);
}
