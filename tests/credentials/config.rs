//! Keys from config and environment variables; invalid settings rejected at build time.

use std::time::Duration;

use llm_fallback::mock::MockServer;
use llm_fallback::providers::credentials::{Credential, CredentialConfig, Credentials, Key};
use llm_fallback::providers::openai::OpenAi;
use llm_fallback::{ErrorKind, Providers};
use tower::ServiceExt;

use crate::*;

fn env(var: &str) -> Option<String> {
    match var {
        "KEY_A" => Some(format!("  {KEY_A}\n")),
        "FREE_KEYS" => Some(format!("{KEY_B}, ,{KEY_C},")),
        "EMPTY" => Some("  ".to_owned()),
        _ => None,
    }
}

fn parse(json: &str) -> Vec<CredentialConfig> {
    serde_json::from_str(json).unwrap()
}

#[test]
fn keys_come_from_one_variable_each_or_a_comma_separated_list() {
    let configs = parse(
        r#"[{"label": "paid", "env": "KEY_A", "weight": 2},
            {"label": "free", "env_list": "FREE_KEYS", "tier": 1},
            {"env": "KEY_A"}]"#,
    );
    let mut configs = configs;
    configs[2].label = Some("again".into());
    let keys = CredentialConfig::resolve_all_with(&configs, "keys", env).unwrap();
    assert_eq!(
        keys,
        [
            Credential::new("paid", KEY_A).weight(2),
            Credential::new("free-1", KEY_B).tier(1),
            Credential::new("free-2", KEY_C).tier(1),
            Credential::new("again", KEY_A),
        ]
    );
    let unlabelled = CredentialConfig::env("KEY_A")
        .resolve_with("k", env)
        .unwrap();
    assert_eq!(
        unlabelled[0].label, "KEY_A",
        "the variable names the key by default"
    );
}

#[test]
fn missing_and_empty_variables_are_named_and_values_never_shown() {
    let configs = [
        CredentialConfig::env("NOT_SET_ANYWHERE"),
        CredentialConfig::env_list("EMPTY"),
        CredentialConfig::env("KEY_A").label("a"),
        CredentialConfig::env("KEY_A").label("a"),
        CredentialConfig::env("KEY_A").label("bad label").weight(0),
        CredentialConfig {
            env: Some("KEY_A".into()),
            env_list: Some("FREE_KEYS".into()),
            ..Default::default()
        },
    ];
    let error =
        CredentialConfig::resolve_all_with(&configs, "providers.openai.keys", env).unwrap_err();
    let text = error.to_string();
    let paths: Vec<_> = error.problems().iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "providers.openai.keys[0].env",
            "providers.openai.keys[1].env_list",
            "providers.openai.keys[3].label",
            "providers.openai.keys[4].weight",
            "providers.openai.keys[4].label",
            "providers.openai.keys[5]",
        ],
        "{text}"
    );
    assert!(
        text.contains("NOT_SET_ANYWHERE") && text.contains("EMPTY"),
        "{text}"
    );
    assert!(!text.contains(KEY_A) && !text.contains(KEY_B), "{text}");

    let from_process = CredentialConfig::env("LLM_FALLBACK_TEST_UNSET_VAR").resolve("k");
    assert!(from_process
        .unwrap_err()
        .to_string()
        .contains("LLM_FALLBACK_TEST_UNSET_VAR"));
    let unknown = serde_json::from_str::<CredentialConfig>(r#"{"env": "X", "key": "sk-x"}"#);
    assert!(
        unknown.is_err(),
        "a key written in the config itself is refused"
    );
}

#[tokio::test]
async fn resolved_credentials_build_one_client_each() {
    let server = MockServer::start().await;
    let configs = parse(r#"[{"label": "free", "env_list": "FREE_KEYS"}]"#);
    let resolved = CredentialConfig::resolve_all_with(&configs, "keys", env).unwrap();
    let keys = Credentials::builder("openai")
        .credentials(resolved, |key| {
            OpenAi::builder()
                .base_url(server.base_url())
                .api_key(key)
                .build()
        })
        .round_robin()
        .build()
        .unwrap();
    assert_eq!(keys.labels().collect::<Vec<_>>(), ["free-1", "free-2"]);
    let providers = Providers::builder()
        .provider("openai", keys)
        .build()
        .unwrap();
    providers.clone().oneshot(request(ID)).await.unwrap();
    providers.oneshot(request(ID)).await.unwrap();
    assert_eq!(keys_called(&server), [KEY_B, KEY_C]);
}

#[test]
fn invalid_settings_are_rejected_when_built() {
    let client = || OpenAi::builder().api_key("sk-x").build().unwrap();
    let error = Credentials::<OpenAi>::builder("openai")
        .build()
        .unwrap_err();
    assert!(error.to_string().contains("no key"), "{error}");

    let error = Credentials::builder("open ai")
        .key(Key::new("a", client()))
        .key(Key::new("a", client()).weight(0))
        .key(Key::new("", client()))
        .rotate_on(ErrorKind::NotFound, Duration::ZERO)
        .max_retry_after(Duration::ZERO)
        .build()
        .unwrap_err();
    let text = error.to_string();
    for expected in [
        "provider name \"open ai\"",
        "\"a\" is used twice",
        "weight: must be at least 1",
        "1 to 64 characters",
        "rotate_on.not_found",
        "max_retry_after",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }

    let bad_key = Credentials::builder("openai")
        .credentials([Credential::new("broken", "sk-bad\nkey")], |key| {
            OpenAi::builder().api_key(key).build()
        })
        .build()
        .unwrap_err();
    let text = bad_key.to_string();
    assert!(text.contains("credentials.openai.broken.api_key"), "{text}");
    assert!(!text.contains("sk-bad"), "{text}");
}
