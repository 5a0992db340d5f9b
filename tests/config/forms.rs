//! Every accepted form of a config file: the full example, TOML/JSON
//! equivalence, type errors, unknown file types.

use super::*;

pub(crate) const FULL: &str = r#"
seed = 7
models = ["openai/o1"]
model_messages = { default = [{ role = "system", content = "Be brief." }], models = { "anthropic/claude-3-5-sonnet" = [{ role = "user", content = "Plain text." }] } }

[providers.openai]
kind = "openai"
api_key_env = "OPENAI_API_KEY"
headers = { "OpenAI-Organization" = "org-1" }

[providers.azure]
kind = "azure"
endpoint = "https://example.openai.azure.com"
api_version = "2024-10-21"
api_key_env = "AZURE_OPENAI_API_KEY"

[providers.anthropic]
kind = "anthropic"
api_key_env = "ANTHROPIC_API_KEY"

[routes]
mini = ["azure/gpt-4o-mini", "openai/gpt-4o-mini"]
one = "openai/gpt-4o-mini"
smart = { models = ["openai/gpt-4o"], fallbacks = ["anthropic/claude-3-5-sonnet"] }
gpt-4o = { weights = { "azure/gpt-4o" = 3, "openai/gpt-4o" = 1.5 }, fallbacks = ["mini"] }
listed = { weights = ["azure/gpt-4o", { model = "openai/gpt-4o", weight = 2 }] }

[timeout]
total = "1m"
attempt = { default = 20, models = { "openai/o1" = "none", mini = "250ms" } }

[retry]
max_retries = { default = 2, models = { "azure/gpt-4o-mini" = 3 } }
backoff = { default = { base = "100ms", jitter = "decorrelated" }, models = { "openai/gpt-4o" = 3.0 } }
max_retry_after = "5s"
budget = false

[cooldown]
consecutive_failures = 3
cooldown = { default = "5s", models = { "azure/gpt-4o" = "30s" } }
failure_ratio = { ratio = 0.25 }
growth = { factor = 2.0, max = "1m" }

[fallback]
groups = "azure/gpt-4o,openai/gpt-4o; fast=openai/gpt-4o-mini,azure/gpt-4o-mini"
groups_from_env = true
context_window_fallbacks = { default = ["openai/o1"], models = { gpt-4o = ["anthropic/claude-3-5-sonnet"] } }
fallback_on = { bad_request = true }
max_fallbacks = 4

[server]
listen = "0.0.0.0:9000"
body_limit = 1024
shutdown_grace = "3s"
"#;

#[test]
fn every_form_of_the_full_example_parses_to_what_it_says() {
    let c = Config::from_toml_str(FULL).unwrap();
    assert_eq!(c.seed, Some(7));
    assert_eq!(c.providers["azure"].kind, ProviderKind::Azure);
    assert!(c.providers["anthropic"].prefill() && !c.providers["openai"].prefill());
    assert_eq!(
        c.routes["one"],
        RouteConfig::Ordered(vec!["openai/gpt-4o-mini".into()])
    );
    let messages = &c.model_messages;
    assert_eq!(messages.default.as_ref().unwrap()[0].role, Role::System);
    assert_eq!(
        messages.models["anthropic/claude-3-5-sonnet"][0].text(),
        "Plain text."
    );
    assert_eq!(
        c.timeout.total,
        Some(HumanDuration(Duration::from_secs(60)))
    );
    let attempt = &c.timeout.attempt;
    assert_eq!(
        attempt.default,
        Some(TimeLimit::After(Duration::from_secs(20)))
    );
    assert_eq!(attempt.models["openai/o1"], TimeLimit::Unlimited);
    assert_eq!(
        attempt.models["mini"],
        TimeLimit::After(Duration::from_millis(250))
    );
    assert_eq!(c.retry.max_retries.models["azure/gpt-4o-mini"], 3);
    let backoff = &c.retry.backoff;
    assert_eq!(
        backoff.default.as_ref().unwrap().jitter,
        Some(JitterSetting::Decorrelated)
    );
    assert_eq!(backoff.models["openai/gpt-4o"].factor, Some(3.0));
    assert_eq!(c.retry.budget, Switch::Off);
    assert!(matches!(c.fallback.groups, GroupsSetting::Spec(_)));
    assert_eq!(c.server.body_limit, Some(1024));

    let keys = env(&[
        ("OPENAI_API_KEY", "sk-1"),
        ("AZURE_OPENAI_API_KEY", "az-1"),
        ("ANTHROPIC_API_KEY", "an-1"),
    ]);
    c.validate_with_env(keys).unwrap();
}

#[test]
fn toml_and_json_of_the_same_structure_are_the_same_config() {
    let toml = Config::from_toml_str(FULL).unwrap();
    let json = serde_json::to_string(&toml).unwrap();
    let back = Config::from_json_str(&json).unwrap();
    assert_eq!(back, toml);

    let by_hand = Config::from_json_str(
        r#"{"providers": {"openai": {"kind": "openai"}},
            "routes": {"mini": ["openai/gpt-4o-mini"]},
            "retry": {"max_retries": {"models": {"openai/gpt-4o-mini": 0}}, "backoff": 2},
            "timeout": {"attempt": "30s"}}"#,
    )
    .unwrap();
    let same = Config::from_toml_str(
        r#"
        routes.mini = ["openai/gpt-4o-mini"]
        [providers.openai]
        kind = "openai"
        [retry]
        max_retries.models."openai/gpt-4o-mini" = 0
        backoff = 2
        [timeout]
        attempt = 30
        "#,
    )
    .unwrap();
    assert_eq!(by_hand, same);
    assert_eq!(same.retry.max_retries.default, None);
    let backoff = same.retry.backoff.default.as_ref().unwrap();
    assert_eq!((backoff.factor, backoff.base), (Some(2.0), None));
    assert_eq!(
        same.timeout.attempt,
        PerModelSetting::all(TimeLimit::After(Duration::from_secs(30)))
    );
}

#[test]
fn type_errors_name_the_value_and_unknown_fields_are_refused() {
    let e = Config::from_toml_str("[timeout]\ntotal = \"3x\"\n").unwrap_err();
    assert!(e.to_string().contains("\"3x\""), "{e}");
    let e = Config::from_toml_str("[retry]\nmax_retry = 3\n").unwrap_err();
    assert!(e.to_string().contains("max_retry"), "{e}");
    let e = Config::from_toml_str("[providers.x]\nkind = \"gemini\"\n").unwrap_err();
    assert!(e.to_string().contains("gemini"), "{e}");
    let e = Config::from_toml_str("[timeout]\nattempt = { models = 3 }\n").unwrap_err();
    assert!(e.to_string().contains("`models` must map model ids"), "{e}");
    let e = Config::from_json_str(r#"{"routes": {"a": 3}}"#).unwrap_err();
    assert!(e.to_string().contains("a list of model ids"), "{e}");
}

#[test]
fn files_of_unknown_types_are_refused_with_a_hint() {
    let e = Config::from_path("gateway.yaml").unwrap_err();
    assert!(e.to_string().contains("gateway.yaml"), "{e}");
    let dir = std::env::temp_dir().join(format!("llm-fallback-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("c.ini");
    std::fs::write(&file, "seed = 1\n").unwrap();
    let e = Config::from_path(&file).unwrap_err();
    assert!(e.to_string().contains("use .toml, .json or .yaml"), "{e}");
    let file = dir.join("c.json");
    std::fs::write(&file, r#"{"seed": "one"}"#).unwrap();
    let e = Config::from_path(&file).unwrap_err();
    assert!(
        e.to_string().starts_with(&file.display().to_string()),
        "{e}"
    );
    std::fs::remove_dir_all(dir).ok();
}
