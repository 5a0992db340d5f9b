//! The failoverbench-style LiteLLM config (every deployment on one local
//! OpenAI-compatible server, `num_retries`, `timeout`, `fallbacks`,
//! `context_window_fallbacks`) served unchanged by the gateway binary with
//! `--litellm-config`, failing over exactly as the native config that
//! `check --print` writes for it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use llm_fallback::mock::{MockServer, ServerReply};
use llm_fallback::server::MODEL_HEADER;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const BIN: &str = env!("CARGO_BIN_EXE_llm-fallback");
/// How long the process gets to start (a deadline, not a sleep).
const PATIENCE: Duration = Duration::from_secs(20);

/// The config as a benchmark writes it for LiteLLM: one local server, a key
/// written in the file, the reliability settings.
fn failoverbench_yaml(base: &str) -> String {
    format!(
        r#"
model_list:
  - model_name: primary
    litellm_params: {{ model: openai/primary-model, api_base: "{base}", api_key: fake-key }}
  - model_name: long
    litellm_params: {{ model: openai/long-model, api_base: "{base}", api_key: fake-key }}
  - model_name: slow
    litellm_params: {{ model: openai/slow-model, api_base: "{base}", api_key: fake-key, timeout: 0.3 }}
  - model_name: backup
    litellm_params: {{ model: openai/backup-model, api_base: "{base}", api_key: fake-key }}
  - model_name: big
    litellm_params: {{ model: openai/big-model, api_base: "{base}", api_key: fake-key }}
router_settings:
  num_retries: 2
  timeout: 10
  fallbacks: [{{"primary": ["backup"]}}, {{"long": ["backup"]}}, {{"slow": ["backup"]}}]
  context_window_fallbacks: [{{"long": ["big"]}}]
litellm_settings:
  set_verbose: false
"#
    )
}

fn file(name: &str, text: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("litellm-{}-{name}", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

/// The binary with `args`, and none of the variables the configs name.
fn command(args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args).env_remove("RUST_LOG").kill_on_drop(true);
    for var in [
        "LITELLM_KEY_OPENAI",
        "OPENAI_API_KEY",
        "MODEL_FALLBACK_GROUPS",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// Starts the gateway; returns it (killed on drop), its address and what
/// it logged up to listening.
async fn serve(mut cmd: Command) -> (Child, String, Vec<String>) {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    let addr = tokio::time::timeout(PATIENCE, async {
        while let Ok(Some(line)) = lines.next_line().await {
            seen.push(line.clone());
            if line.contains("gateway listening") {
                let v: serde_json::Value = serde_json::from_str(&line).unwrap();
                return v["addr"].as_str().unwrap().to_owned();
            }
        }
        panic!("the gateway stopped before listening:\n{}", seen.join("\n"))
    })
    .await
    .expect("the gateway listens");
    (child, addr, seen)
}

/// What one request gave, and what each upstream model received.
#[derive(Debug, PartialEq)]
struct Outcome {
    group: &'static str,
    status: u16,
    served_by: String,
    upstream: Vec<(&'static str, usize)>,
}

const MODELS: [&str; 5] = [
    "primary-model",
    "long-model",
    "slow-model",
    "backup-model",
    "big-model",
];

/// Sends one request per group through the gateway at `addr`.
async fn outcomes(addr: &str, mock: &MockServer) -> Vec<Outcome> {
    let http = reqwest::Client::new();
    let mut out = Vec::new();
    for group in ["primary", "long", "slow"] {
        mock.clear_calls();
        let r = http
            .post(format!("http://{addr}/v1/chat/completions"))
            .json(&serde_json::json!({"model": group, "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        let served_by = (r.headers().get(MODEL_HEADER))
            .map_or("", |v| v.to_str().unwrap())
            .to_owned();
        let status = r.status().as_u16();
        assert!(
            mock.key_count("fake-key") > 0,
            "the key of the file is sent"
        );
        out.push(Outcome {
            group,
            status,
            served_by,
            upstream: MODELS
                .iter()
                .map(|m| (*m, mock.call_count(m)))
                .filter(|(_, n)| *n > 0)
                .collect(),
        });
    }
    out
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[tokio::test]
async fn the_failoverbench_litellm_config_runs_unchanged_and_fails_over_as_its_native_twin() {
    let mock = MockServer::start().await;
    mock.always("primary-model", ServerReply::status(503));
    mock.always(
        "long-model",
        ServerReply::error(400, "context_length_exceeded", "too many tokens"),
    );
    mock.always("slow-model", ServerReply::hang());
    mock.always("backup-model", ServerReply::text("from backup"));
    mock.always("big-model", ServerReply::text("from big"));
    let yaml = file("failoverbench.yaml", &failoverbench_yaml(&mock.base_url()));

    let (litellm, addr, logged) = serve(command(&[
        "serve",
        "--litellm-config",
        path_str(&yaml),
        "--listen",
        "127.0.0.1:0",
        "--log-format",
        "json",
    ]))
    .await;
    let warning = logged.join("\n");
    assert!(
        warning.contains("litellm_settings.set_verbose: not supported"),
        "{warning}"
    );
    assert!(!warning.contains("fake-key"), "{warning}");
    let through_litellm = outcomes(&addr, &mock).await;
    drop(litellm);

    let expected = vec![
        // 503: retried num_retries times, then the group's fallback.
        Outcome {
            group: "primary",
            status: 200,
            served_by: "openai/backup-model".into(),
            upstream: vec![("primary-model", 3), ("backup-model", 1)],
        },
        // Too long: straight to the context-window fallback, not the general one.
        Outcome {
            group: "long",
            status: 200,
            served_by: "openai/big-model".into(),
            upstream: vec![("long-model", 1), ("big-model", 1)],
        },
        // Silent past its own `timeout`: not retried, the fallback answers.
        Outcome {
            group: "slow",
            status: 200,
            served_by: "openai/backup-model".into(),
            upstream: vec![("slow-model", 1), ("backup-model", 1)],
        },
    ];
    assert_eq!(through_litellm, expected);

    // The native twin: printed by check, served with --config.
    let printed = command(&["check", "--litellm-config", path_str(&yaml), "--print"])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8(printed.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&printed.stderr);
    assert!(printed.status.success(), "{stderr}");
    assert!(!stdout.contains("fake-key") && !stderr.contains("fake-key"));
    assert!(stderr.contains("LITELLM_KEY_OPENAI"), "{stderr}");
    let toml = file("failoverbench.toml", &stdout);
    let mut native = command(&[
        "serve",
        "--config",
        path_str(&toml),
        "--listen",
        "127.0.0.1:0",
        "--log-format",
        "json",
    ]);
    native.env("LITELLM_KEY_OPENAI", "fake-key");
    let (native, addr, _) = serve(native).await;
    let through_native = outcomes(&addr, &mock).await;
    drop(native);
    assert_eq!(through_native, through_litellm);
}

#[tokio::test]
async fn check_describes_a_litellm_config_and_names_its_problems_with_the_file() {
    let yaml = file("check.yaml", &failoverbench_yaml("http://127.0.0.1:9/v1"));
    let out = command(&["check", "--litellm-config", path_str(&yaml)])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("is valid."), "{stdout}");
    assert!(stdout.contains("LITELLM_KEY_OPENAI  set"), "{stdout}");
    assert!(
        stderr.contains("2 settings of the LiteLLM config not honoured")
            && stderr.contains("litellm_settings.set_verbose: not supported")
            && stderr.contains("reads it from LITELLM_KEY_OPENAI"),
        "{stderr}"
    );
    assert!(!stdout.contains("fake-key") && !stderr.contains("fake-key"));

    let bad = file(
        "bad.yaml",
        "model_list:\n  - model_name: a\n    litellm_params: { model: openai/x, rpm: lots }\n",
    );
    let out = command(&["check", "--litellm-config", path_str(&bad)])
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}: model_list[0].litellm_params.rpm: expected a number, found \"lots\"",
            bad.display()
        )),
        "{stderr}"
    );
}

#[tokio::test]
async fn check_print_shows_the_native_config_whose_paths_its_problems_name() {
    let yaml = file("placeholders.yaml", super::docs::ROUTER_FALLBACKS);
    let out = command(&["check", "--litellm-config", path_str(&yaml), "--print"])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stdout
            .contains("[providers.azure]\nkind = \"azure\"\nendpoint = \"<your-azure-endpoint>\""),
        "{stdout}"
    );
    assert!(
        stderr.contains("(translated) (paths of the native config on stdout)"),
        "{stderr}"
    );
    assert!(stderr.contains("providers.azure.endpoint"), "{stderr}");
    assert!(!stdout.contains("<your-azure-api-key>") && !stderr.contains("<your-azure-api-key>"));
}
