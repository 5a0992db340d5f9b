//! `check --print`: the native config as TOML that reads back the same,
//! with no key written in the LiteLLM file in it.

use super::docs::{
    AZURE_BALANCE_REDIS, CONTEXT_WINDOW, PROXY_SERVER_CONFIG, RELIABILITY, ROUTER_FALLBACKS,
};
use super::*;

fn examples() -> Vec<LiteLlmConfig> {
    let vars = [
        ("AZURE_API_BASE", "https://my-endpoint.openai.azure.com"),
        ("REDIS_HOST", "127.0.0.1"),
        ("REDIS_PORT", "6379"),
        ("REDIS_PASSWORD", "s3cret"),
    ];
    [
        RELIABILITY,
        CONTEXT_WINDOW,
        AZURE_BALANCE_REDIS,
        PROXY_SERVER_CONFIG,
        ROUTER_FALLBACKS,
    ]
    .iter()
    .map(|yaml| translate(yaml, &vars))
    .collect()
}

#[test]
fn the_printed_native_config_reads_back_as_the_same_config() {
    for t in examples() {
        let toml = t.config.to_toml_string().unwrap();
        let back = Config::from_toml_str(&toml).unwrap_or_else(|e| panic!("{e}\n{toml}"));
        assert_eq!(back, t.config, "{toml}");
    }
}

#[test]
fn the_printed_config_leaves_defaults_out_and_names_variables_not_keys() {
    let all = examples();
    let toml = all[3].config.to_toml_string().unwrap();
    for secret in ["fake-key", "sk-1234", "s3cret", "user:pw"] {
        assert!(!toml.contains(secret), "{secret} in:\n{toml}");
    }
    assert!(
        toml.contains("api_key_env = \"LITELLM_KEY_OPENAI_2\""),
        "{toml}"
    );
    assert!(
        toml.contains("api_key_env = \"LITELLM_MASTER_KEY\""),
        "{toml}"
    );
    // Tables that only repeat defaults are left out.
    assert!(!toml.contains("[retry.backoff"), "{toml}");
    assert!(!toml.contains("groups_from_env"), "{toml}");
    for t in &all {
        let shown = format!("{t:?}");
        for secret in ["fake-key", "sk-1234", "<my-openai-key>"] {
            assert!(!shown.contains(secret), "{secret} in Debug output");
        }
    }
}

#[test]
fn a_native_config_with_a_redis_url_prints_without_its_password() {
    let c = native(
        r#"
        [store]
        type = "redis"
        url = "redis://:hunter2@10.0.0.5:6379/0"
        "#,
    );
    let toml = c.to_toml_string().unwrap();
    assert!(!toml.contains("hunter2"), "{toml}");
    assert!(toml.contains("redis://***@10.0.0.5:6379/0"), "{toml}");
}
