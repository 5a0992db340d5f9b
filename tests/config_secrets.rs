//! Config errors never echo a secret: a parse error does not quote a source
//! line holding a key or a password, and a key pasted where the name of its
//! environment variable belongs is refused without being printed, in the
//! error's `Display` and `Debug` alike (and in the config's `Debug`).
#![cfg(feature = "toml")]

use llm_fallback::providers::credentials::CredentialConfig;
use llm_fallback::{Config, ConfigError};

const SECRET: &str = "sk-live-9f8e7d6c5b4a39281706f5e4d3c2b1a0";

fn env(_: &str) -> Option<String> {
    None
}

/// Asserts that no part of `secret` shows in `e`, and that `e` says `about`.
fn hides(e: &ConfigError, secret: &str, about: &str) {
    let shown = format!("{e}\n{e:?}");
    if std::env::var_os("SHOW_ERRORS").is_some() {
        println!("{e}\n");
    }
    assert!(!shown.contains(secret), "the secret shows:\n{shown}");
    assert!(shown.contains(about), "no {about:?} in:\n{shown}");
}

fn toml_error(text: &str) -> ConfigError {
    Config::from_toml_str(text).expect_err("the config is invalid")
}

fn validation_error(text: &str) -> ConfigError {
    let config = Config::from_toml_str(text).expect("the config parses");
    let debug = format!("{config:?}");
    assert!(
        !debug.contains(SECRET),
        "the config's Debug shows the secret: {debug}"
    );
    config
        .validate_with_env(env)
        .expect_err("the config is invalid")
}

#[test]
fn a_toml_error_does_not_quote_a_line_holding_a_key() {
    let e = toml_error(&format!(
        "[providers.openai]\nkind = \"openai\"\napi_key = \"{SECRET}\"\n"
    ));
    hides(&e, SECRET, "unknown field `api_key`");
    hides(&e, SECRET, "line 3");

    // Unquoted: a syntax error at the value itself.
    let e = toml_error(&format!("[providers.openai]\napi_key_env = {SECRET}\n"));
    hides(&e, SECRET, "line 2");
    // Unterminated.
    let e = toml_error(&format!("[providers.openai]\napi_key_env = \"{SECRET}\n"));
    hides(&e, SECRET, "line 2");
    // Any key named like a secret, inline tables included.
    let e = toml_error("[store]\ntype = \"redis\"\npassword = hunter2-hunter2\n");
    hides(&e, "hunter2", "line 3");
    let e = toml_error(&format!(
        "[providers.openai]\nkeys = [{{ env = {SECRET} }}]\n"
    ));
    hides(&e, SECRET, "line 2");
}

#[test]
fn a_toml_error_does_not_quote_a_url_with_a_password() {
    let e = toml_error("[store]\ntype = \"redis\"\nurl = redis://:hunter2pw@10.0.0.5:6379\n");
    hides(&e, "hunter2pw", "line 3");
}

#[test]
fn a_key_in_the_wrong_field_is_not_quoted_back() {
    let e = toml_error(&format!("[server]\nbody_limit = \"{SECRET}\"\n"));
    hides(&e, SECRET, "invalid type: string \"***\"");
    let json = format!(r#"{{"server": {{"body_limit": "{SECRET}"}}}}"#);
    let e = Config::from_json_str(&json).expect_err("the config is invalid");
    hides(&e, SECRET, "invalid JSON: invalid type: string \"***\"");
}

#[test]
fn a_harmless_toml_error_still_shows_its_line() {
    let e = toml_error("[providers.openai]\nkind = \"openai\"\nbase_url = https://example.com\n");
    hides(&e, SECRET, "base_url = https://example.com");
}

#[test]
fn a_key_pasted_as_a_variable_name_is_refused_unprinted() {
    let e = validation_error(&format!(
        "[providers.openai]\nkind = \"openai\"\napi_key_env = \"{SECRET}\"\n"
    ));
    hides(
        &e,
        SECRET,
        "providers.openai.api_key_env: not a valid environment variable name",
    );

    // A hex key is a valid name, but long letters and digits without `_` are a key.
    let hex = "f0e1d2c3b4a5968778695a4b3c2d1e0f";
    let e = validation_error(&format!(
        "[providers.openai]\nkind = \"openai\"\napi_key_env = \"{hex}\"\n"
    ));
    hides(&e, hex, "looks like a key");

    let e = validation_error(&format!(
        "[providers.openai]\nkind = \"openai\"\nkeys = [{{ env = \"{SECRET}\" }}, {{ env_list = \"{SECRET}\" }}]\n"
    ));
    hides(
        &e,
        SECRET,
        "keys[0].env: not a valid environment variable name",
    );
    hides(
        &e,
        SECRET,
        "keys[1].env_list: not a valid environment variable name",
    );

    let e = validation_error(&format!("[server]\napi_key_env = \"{SECRET}\"\n"));
    hides(
        &e,
        SECRET,
        "server.api_key_env: not a valid environment variable name",
    );
}

#[test]
fn a_redis_url_pasted_as_a_variable_name_is_refused_unprinted() {
    let e = validation_error(
        "[store]\ntype = \"redis\"\nurl_env = \"redis://:hunter2pw@10.0.0.5:6379\"\n",
    );
    hides(
        &e,
        "hunter2pw",
        "store.url_env: not a valid environment variable name",
    );
}

#[test]
fn credential_configs_refuse_and_hide_a_pasted_key() {
    let config = CredentialConfig::env(SECRET);
    assert!(!format!("{config:?}").contains(SECRET));
    let e = config
        .resolve_with("keys[0]", |_| Some("x".into()))
        .unwrap_err();
    hides(
        &e,
        SECRET,
        "keys[0].env: not a valid environment variable name",
    );
    // A real name is still named when it is not set.
    let e = CredentialConfig::env("OPENAI_API_KEY")
        .resolve_with("k", |_| None)
        .unwrap_err();
    hides(&e, SECRET, "environment variable OPENAI_API_KEY is not set");
}
