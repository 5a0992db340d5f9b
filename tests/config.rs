//! Config files: every accepted form, TOML/JSON equivalence, and every
//! validation error reported at once with its path.
#![cfg(feature = "toml")]

use std::collections::HashMap;
use std::time::Duration;

use llm_fallback::chat::Role;
use llm_fallback::config::{ProviderKind, RouteConfig};
use llm_fallback::layers::fallback::GroupsSetting;
use llm_fallback::layers::retry::JitterSetting;
use llm_fallback::settings::{HumanDuration, PerModelSetting, Switch, TimeLimit};
use llm_fallback::{Config, ConfigError, Stack};

fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + Send + Sync + 'static {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| vars.get(name).cloned()
}

fn problems(e: &ConfigError) -> Vec<String> {
    e.to_string().lines().map(str::to_owned).collect()
}

/// Asserts that `e` has a problem starting with `path: ` and containing `text`.
fn has(e: &ConfigError, path: &str, text: &str) {
    let found = e
        .problems()
        .iter()
        .any(|p| p.path == path && p.message.contains(text));
    assert!(found, "no problem `{path}: ...{text}...` in:\n{e}");
}

const FULL: &str = r#"
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

const BROKEN: &str = r#"
models = ["mistral/large"]
model_messages = [{ role = "assistant", content = "Sure!" }]

[providers.openai]
kind = "openai"
api_key_env = "OPENAI_API_KEY"
base_url = "ftp://example.com"
headers = { "bad header" = "x" }

[providers.azure]
kind = "azure"
base_url = "https://example.com"

[providers."open ai"]
kind = "openai"

[providers._private]
kind = "openai"

[routes]
gpt-4o-mini = { weights = { "azure/gpt-4o" = -1, "openai/gpt-4o" = nan } }
zeros = { weights = { "azure/gpt-4o" = 0 } }
fast = ["openai/gpt-4o-mini", "groq/llama-3.1-8b", "openai/gpt-4o-mini"]
both = { models = ["openai/gpt-4o"], weights = ["openai/gpt-4o"] }
neither = { fallbacks = ["openai/gpt-4o"] }
selfish = ["selfish"]
ping = ["openai/gpt-4o", "pong"]
pong = ["ping"]
"openai/gpt-5" = ["openai/gpt-4o"]
mixed = { weights = ["fast"] }
empty = []

[timeout]
total = 0
attempt = { models = { "azure/gpt-4o" = "0s", "gpt4" = "1s" } }

[retry]
backoff = { default = { factor = 0.5 }, models = { "openai/gpt-4o" = { base = "0ms" } } }
budget = { window = "2m" }

[cooldown]
cooldown = "10s"
failure_ratio = { ratio = 1.5, min_calls = 0 }
growth = { factor = 2, max = "1s" }

[fallback]
groups = [["openai/gpt-4o"]]
groups_from_env = true
context_window_fallbacks = { models = { "nobody/gpt" = ["openai/gpt-4.1"] } }
fallback_on = { sometimes = true }

[server]
listen = "localhost"
api_key_env = "GATEWAY_KEY"
body_limit = 0
"#;

#[test]
fn every_problem_is_reported_at_once_with_its_path() {
    let config = Config::from_toml_str(BROKEN).unwrap();
    let e = config
        .validate_with_env(env(&[("MODEL_FALLBACK_GROUPS", "a/b,,c/d")]))
        .unwrap_err();
    let cases = [
        (
            "providers.openai.api_key_env",
            "environment variable OPENAI_API_KEY is not set or empty",
        ),
        (
            "providers.openai.base_url",
            "\"ftp://example.com\" is not an http(s) URL",
        ),
        (
            "providers.openai.headers.\"bad header\"",
            "not a valid HTTP header name",
        ),
        ("providers.azure.base_url", "takes `endpoint`"),
        (
            "providers.azure.endpoint",
            "an azure provider needs `endpoint`",
        ),
        ("providers.\"open ai\"", "contains ' '"),
        ("providers._private", "reserved"),
        (
            "routes.gpt-4o-mini.weights",
            "weight for \"azure/gpt-4o\" is negative",
        ),
        (
            "routes.gpt-4o-mini.weights",
            "weight for \"openai/gpt-4o\" is not a finite number",
        ),
        ("routes.zeros.weights", "every weight is zero"),
        (
            "routes.fast[1]",
            "model \"groq/llama-3.1-8b\" names provider \"groq\", which is not configured",
        ),
        ("routes.fast[2]", "\"openai/gpt-4o-mini\" is listed twice"),
        ("routes.both", "either `models` or `weights`, not both"),
        ("routes.neither", "needs `models` (in order) or `weights`"),
        ("routes.selfish[0]", "lists itself"),
        (
            "routes.ping",
            "the routes form a cycle: ping -> pong -> ping",
        ),
        (
            "routes.\"openai/gpt-5\"",
            "reads as a model id of provider \"openai\"",
        ),
        ("routes.mixed.weights", "\"fast\" is a route alias"),
        ("routes.empty", "the route has no model"),
        ("timeout.total", "must be more than zero"),
        (
            "timeout.attempt.models.\"azure/gpt-4o\"",
            "must be more than zero",
        ),
        (
            "timeout.attempt.models.gpt4",
            "is not of the form \"<provider>/<model>\"",
        ),
        ("retry.backoff.factor", "factor 0.5 is invalid"),
        (
            "retry.backoff.models.\"openai/gpt-4o\".base",
            "more than zero",
        ),
        ("retry.budget.window", "between 1 s and 60 s"),
        ("cooldown.failure_ratio.ratio", "ratio 1.5 is not in (0, 1]"),
        ("cooldown.failure_ratio.min_calls", "at least 1"),
        ("cooldown.growth.max", "shorter than the cooldown"),
        ("fallback.groups[0]", "at least two distinct models"),
        ("MODEL_FALLBACK_GROUPS", "an empty model id"),
        (
            "fallback.context_window_fallbacks.models.\"nobody/gpt\"",
            "provider \"nobody\"",
        ),
        (
            "fallback.fallback_on.sometimes",
            "unknown error kind \"sometimes\"",
        ),
        (
            "model_messages[0]",
            "role assistant cannot open a conversation",
        ),
        ("models[0]", "provider \"mistral\""),
        ("server.listen", "\"localhost\" is not an address"),
        (
            "server.api_key_env",
            "environment variable GATEWAY_KEY is not set",
        ),
        ("server.body_limit", "at least 1 byte"),
    ];
    for (path, text) in cases {
        has(&e, path, text);
    }
    // Nothing is reported twice, and nothing but these.
    let lines = problems(&e);
    let mut unique = lines.clone();
    unique.dedup();
    assert_eq!(unique.len(), lines.len(), "{e}");
    assert_eq!(lines.len(), cases.len(), "{e}");
}

#[test]
fn an_anthropic_provider_builds_into_the_stack() {
    let config = Config::from_toml_str(
        r#"
        [providers.claude]
        kind = "anthropic"
        api_key_env = "ANTHROPIC_API_KEY"
        [routes]
        smart = ["claude/claude-3-5-sonnet-20240620"]
        "#,
    )
    .unwrap();
    config
        .validate_with_env(env(&[("ANTHROPIC_API_KEY", "k")]))
        .unwrap();
    let stack = Stack::builder()
        .config(config)
        .env(env(&[("ANTHROPIC_API_KEY", "k")]))
        .build()
        .unwrap();
    assert_eq!(
        stack.routes()["smart"],
        ["claude/claude-3-5-sonnet-20240620"]
    );
}

#[test]
fn keys_never_appear_in_errors_or_debug_output() {
    let config = Config::from_toml_str(
        r#"
        [providers.openai]
        kind = "openai"
        api_key_env = "OPENAI_API_KEY"
        headers = { "X-Secret" = "hdr-secret-value\n" }
        "#,
    )
    .unwrap();
    let e = Stack::builder()
        .config(config.clone())
        .env(env(&[("OPENAI_API_KEY", "sk-very-secret")]))
        .build()
        .unwrap_err();
    let shown = format!("{e} {e:?} {config:?}");
    assert!(
        !shown.contains("sk-very-secret") && !shown.contains("hdr-secret"),
        "{shown}"
    );
    has(
        &e,
        "providers.openai.headers.X-Secret",
        "not allowed in a header",
    );
}

#[test]
fn the_example_gateway_config_stays_valid() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/gateway.toml");
    let config = Config::from_path(path).unwrap();
    let keys = env(&[
        ("OPENAI_API_KEY", "sk-test"),
        ("AZURE_OPENAI_API_KEY", "az-test"),
        ("ANTHROPIC_API_KEY", "ant-test"),
        ("GATEWAY_API_KEY", "gw-test"),
    ]);
    config.validate_with_env(&keys).unwrap();
    let stack = Stack::builder().config(config).env(keys).build().unwrap();
    assert_eq!(
        stack.routes()["smart"],
        ["openai/gpt-4o", "anthropic/claude-3-5-sonnet-20240620"],
        "the cross-vendor route"
    );
    assert!(
        stack.describe_routes().contains("weighted"),
        "{}",
        stack.describe_routes()
    );
}

#[test]
fn files_of_unknown_types_are_refused_with_a_hint() {
    let e = Config::from_path("gateway.yaml").unwrap_err();
    assert!(e.to_string().contains("gateway.yaml"), "{e}");
    let dir = std::env::temp_dir().join(format!("llm-fallback-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("c.yaml");
    std::fs::write(&file, "seed: 1\n").unwrap();
    let e = Config::from_path(&file).unwrap_err();
    assert!(e.to_string().contains("yq -o=json"), "{e}");
    let file = dir.join("c.json");
    std::fs::write(&file, r#"{"seed": "one"}"#).unwrap();
    let e = Config::from_path(&file).unwrap_err();
    assert!(
        e.to_string().starts_with(&file.display().to_string()),
        "{e}"
    );
    std::fs::remove_dir_all(dir).ok();
}
