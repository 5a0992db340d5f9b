//! The new fields in every form they take, and each of their problems
//! reported with its path (never with a key's value).

use std::time::Duration;

use llm_fallback::config::TimeLimit;
use llm_fallback::providers::credentials::CredentialConfig;
use llm_fallback::Config;

use crate::*;

const SECRET: &str = "sk-live-SECRET-9f3a";

const STREAMING: &str = r#"
seed = 3

[providers.openai]
kind = "openai"
keys = [
  { label = "paid", env = "OPENAI_KEY_PAID", tier = 0, weight = 2 },
  { env_list = "OPENAI_FREE_KEYS", tier = 1 },
]

[providers.azure]
kind = "azure"
endpoint = "https://example.openai.azure.com"
keys = [{ env = "AZURE_KEY" }]

[providers.claude]
kind = "anthropic"
keys = [{ label = "team", env_list = "CLAUDE_KEYS" }]

[routes]
mini = ["azure/gpt-4o-mini", "openai/gpt-4o-mini"]
smart = { weights = { "claude/claude-3-5-sonnet" = 1, "openai/gpt-4o" = 1 } }

[timeout]
headers = "5s"
first_token = { default = "20s", models = { "openai/o1" = "none", mini = "8s" } }
idle = 12
stream_total = "none"

[fallback]
groups = [["azure/gpt-4o", "openai/gpt-4o"]]
recover_streams = { default = true, models = { smart = false, "azure/gpt-4o" = false } }
"#;

const KEYS: &[(&str, &str)] = &[
    ("OPENAI_KEY_PAID", SECRET),
    ("OPENAI_FREE_KEYS", "sk-free-1, sk-free-2"),
    ("AZURE_KEY", "az-1"),
    ("CLAUDE_KEYS", "an-1,an-2"),
];

#[test]
fn stream_deadlines_recovery_and_keys_parse_in_every_form() {
    let c = Config::from_toml_str(STREAMING).unwrap();
    let t = &c.timeout;
    let secs = |s| TimeLimit::After(Duration::from_secs(s));
    assert_eq!(t.headers.default, Some(secs(5)));
    assert_eq!(t.first_token.default, Some(secs(20)));
    assert_eq!(t.first_token.models["openai/o1"], TimeLimit::Unlimited);
    assert_eq!(t.first_token.models["mini"], secs(8));
    assert_eq!(t.idle.default, Some(secs(12)), "a number is seconds");
    assert_eq!(t.stream_total.default, Some(TimeLimit::Unlimited));
    let recover = &c.fallback.recover_streams;
    assert_eq!(recover.default, Some(true));
    assert!(!recover.models["smart"] && !recover.models["azure/gpt-4o"]);
    assert_eq!(
        c.providers["openai"].keys.as_deref().unwrap(),
        [
            CredentialConfig::env("OPENAI_KEY_PAID")
                .label("paid")
                .weight(2),
            CredentialConfig::env_list("OPENAI_FREE_KEYS").tier(1),
        ]
    );

    // Every kind builds its rotation; --check names the keys by label only.
    let stack = stack(STREAMING, KEYS);
    let providers = stack.describe_providers();
    for line in [
        "openai: openai, 3 keys: paid (tier 0, weight 2), OPENAI_FREE_KEYS-1 (tier 1, weight 1), OPENAI_FREE_KEYS-2 (tier 1, weight 1)",
        "azure: azure, 1 key: AZURE_KEY (tier 0, weight 1)",
        "claude: anthropic, 2 keys: team-1 (tier 0, weight 1), team-2 (tier 0, weight 1), continues partial answers (prefill)",
    ] {
        assert!(providers.contains(line), "{line:?} not in:\n{providers}");
    }
    assert!(!providers.contains(SECRET), "{providers}");
    let routes = stack.describe_routes();
    assert!(
        routes.contains("mini: in order: azure/gpt-4o-mini, openai/gpt-4o-mini; a cut stream is finished by the next candidate"),
        "{routes}"
    );
    assert!(
        !routes
            .lines()
            .any(|l| l.starts_with("smart") && l.contains("cut")),
        "{routes}"
    );
}

#[test]
fn problems_of_deadlines_recovery_and_keys_are_reported_with_their_paths() {
    let toml = r#"
        [providers.openai]
        kind = "openai"
        api_key_env = "OPENAI_API_KEY"
        keys = [{ env = "OPENAI_KEY_2" }]

        [providers.azure]
        kind = "azure"
        endpoint = "https://example.openai.azure.com"
        keys = [{ env = "AZURE_KEY" }, { env = "AZURE_MISSING" }, { env = "A", env_list = "B" }]

        [providers.claude]
        kind = "anthropic"
        keys = []

        [routes]
        mini = ["azure/gpt-4o-mini", "openai/gpt-4o-mini"]

        [timeout]
        first_token = "0s"
        idle = { models = { "azure/gpt-4o-mini" = "0ms" } }
        headers = { models = { "groq/llama" = "1s" } }

        [fallback]
        recover_streams = { models = { "openai/solo" = true, mini = true } }
    "#;
    let vars = [
        ("OPENAI_API_KEY", SECRET),
        ("OPENAI_KEY_2", SECRET),
        ("AZURE_KEY", SECRET),
    ];
    let e = build(toml, &vars).unwrap_err();
    let cases = [
        (
            "providers.openai.keys",
            "either `api_key_env` (one key) or `keys`",
        ),
        (
            "providers.azure.keys[1].env",
            "environment variable AZURE_MISSING is not set or empty",
        ),
        (
            "providers.azure.keys[2]",
            "exactly one of `env` and `env_list`",
        ),
        ("providers.claude.keys", "no key is configured"),
        ("timeout.first_token", "must be more than zero"),
        (
            r#"timeout.idle.models."azure/gpt-4o-mini""#,
            "must be more than zero",
        ),
        (
            r#"timeout.headers.models."groq/llama""#,
            "provider \"groq\", which is not configured",
        ),
        (
            r#"fallback.recover_streams.models."openai/solo""#,
            "is in no route or fallback group",
        ),
    ];
    for (path, text) in cases {
        has(&e, path, text);
    }
    assert_eq!(e.problems().len(), cases.len(), "nothing else:\n{e}");
    let shown = format!("{e} {e:?}");
    assert!(!shown.contains(SECRET), "{shown}");

    let typo = Config::from_toml_str("[timeout]\nfirst_token = \"soon\"").unwrap_err();
    assert!(typo.to_string().contains("\"soon\""), "{typo}");
    let unknown =
        Config::from_toml_str("[providers.x]\nkind = \"openai\"\nkeys = [{ key = \"sk-x\" }]");
    assert!(
        unknown.is_err(),
        "a key written in the file itself is refused"
    );
}
