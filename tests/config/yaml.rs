//! YAML configs: the same structure as TOML, the same `Config`, and every
//! problem at once with its path.
#![cfg(feature = "yaml")]

use super::*;

/// `forms::FULL`, written in YAML by hand.
const FULL_YAML: &str = r#"
seed: 7
models: [openai/o1]
model_messages:
  default: [{ role: system, content: Be brief. }]
  models:
    anthropic/claude-3-5-sonnet: [{ role: user, content: Plain text. }]
providers:
  openai:
    kind: openai
    api_key_env: OPENAI_API_KEY
    headers: { OpenAI-Organization: org-1 }
  azure:
    kind: azure
    endpoint: https://example.openai.azure.com
    api_version: "2024-10-21"
    api_key_env: AZURE_OPENAI_API_KEY
  anthropic:
    kind: anthropic
    api_key_env: ANTHROPIC_API_KEY
routes:
  mini: [azure/gpt-4o-mini, openai/gpt-4o-mini]
  one: openai/gpt-4o-mini
  smart: { models: [openai/gpt-4o], fallbacks: [anthropic/claude-3-5-sonnet] }
  gpt-4o:
    weights: { azure/gpt-4o: 3, openai/gpt-4o: 1.5 }
    fallbacks: [mini]
  listed:
    weights: [azure/gpt-4o, { model: openai/gpt-4o, weight: 2 }]
timeout:
  total: 1m
  attempt: { default: 20, models: { openai/o1: none, mini: 250ms } }
retry:
  max_retries: { default: 2, models: { azure/gpt-4o-mini: 3 } }
  backoff:
    default: { base: 100ms, jitter: decorrelated }
    models: { openai/gpt-4o: 3.0 }
  max_retry_after: 5s
  budget: false
cooldown:
  consecutive_failures: 3
  cooldown: { default: 5s, models: { azure/gpt-4o: 30s } }
  failure_ratio: { ratio: 0.25 }
  growth: { factor: 2.0, max: 1m }
fallback:
  groups: "azure/gpt-4o,openai/gpt-4o; fast=openai/gpt-4o-mini,azure/gpt-4o-mini"
  groups_from_env: true
  context_window_fallbacks:
    default: [openai/o1]
    models: { gpt-4o: [anthropic/claude-3-5-sonnet] }
  fallback_on: { bad_request: true }
  max_fallbacks: 4
server:
  listen: 0.0.0.0:9000
  body_limit: 1024
  shutdown_grace: 3s
"#;

#[test]
fn a_yaml_config_is_the_same_config_as_its_toml_twin() {
    let yaml = Config::from_yaml_str(FULL_YAML).unwrap();
    let toml = Config::from_toml_str(super::forms::FULL).unwrap();
    assert_eq!(yaml, toml);
}

#[test]
fn every_problem_of_a_yaml_config_is_reported_at_once_with_its_path() {
    let e = Config::from_yaml_str(
        "providers:\n  openai: { kind: openai, api_key: sk-live-0123456789abcdef0123 }\n\
         retry: { max_retry: 2 }\ntimeout: { total: 3x }\n",
    )
    .unwrap_err();
    assert_eq!(e.problems().len(), 3, "{e}");
    has(&e, "providers.openai.api_key", "unknown field `api_key`");
    has(&e, "retry.max_retry", "unknown field `max_retry`");
    has(&e, "timeout.total", "3x");
    assert!(!e.to_string().contains("sk-live"), "{e}");
}

#[test]
fn a_yaml_syntax_error_or_a_lone_problem_keeps_the_parsers_words_without_secrets() {
    let e = Config::from_yaml_str("retry: [\n").unwrap_err();
    assert_eq!(e.problems().len(), 1, "{e}");
    assert!(e.to_string().contains("invalid YAML"), "{e}");
    let e = Config::from_yaml_str("seed: sk-live-0123456789abcdef0123\n").unwrap_err();
    assert_eq!(e.problems().len(), 1, "{e}");
    assert!(!e.to_string().contains("sk-live"), "{e}");
    assert!(e.to_string().contains("line 1"), "{e}");
}

#[test]
fn yaml_and_yml_files_are_read_by_their_extension() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("yaml-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for name in ["c.yaml", "c.yml"] {
        let file = dir.join(name);
        std::fs::write(&file, FULL_YAML).unwrap();
        assert_eq!(
            Config::from_path(&file).unwrap(),
            Config::from_toml_str(super::forms::FULL).unwrap()
        );
    }
    let file = dir.join("bad.yaml");
    std::fs::write(&file, "retry: { max_retry: 2 }\nseed: one\n").unwrap();
    let e = Config::from_path(&file).unwrap_err().to_string();
    let shown = file.display().to_string();
    assert!(
        e.contains(&format!("{shown}: retry.max_retry: unknown field")),
        "{e}"
    );
    assert!(e.contains(&format!("{shown}: seed: invalid type")), "{e}");
    let file = dir.join("litellm.yaml");
    std::fs::write(&file, "model_list: []\n").unwrap();
    let e = Config::from_path(&file).unwrap_err().to_string();
    assert!(e.contains("run it with --litellm-config"), "{e}");
    std::fs::remove_dir_all(dir).ok();
}
