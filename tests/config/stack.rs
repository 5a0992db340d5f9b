//! Configs built into stacks: an Anthropic provider, keys kept out of
//! errors and Debug output, the shipped example gateway config.

use super::*;

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
