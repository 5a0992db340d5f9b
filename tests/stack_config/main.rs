//! Stacks built from config files with the settings of streaming and of
//! credential rotation: parsing and validation, then real sockets against
//! the mock provider server (keys rotated, stream deadlines, mid-stream
//! recovery).
#![cfg(all(
    feature = "openai",
    feature = "anthropic",
    feature = "mock",
    feature = "server",
    feature = "toml"
))]

#[path = "../common/mod.rs"]
mod common;
mod keys;
mod parse;
mod streams;

use std::collections::HashMap;

use llm_fallback::{ChatRequest, Config, ConfigError, Message, Stack};

/// An environment holding only `vars`.
pub(crate) fn env(
    vars: &[(&str, &str)],
) -> impl Fn(&str) -> Option<String> + Send + Sync + 'static {
    let vars: HashMap<String, String> = (vars.iter())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| vars.get(name).cloned()
}

/// The stack `toml` describes, keys read from `vars`.
pub(crate) fn build(toml: &str, vars: &[(&str, &str)]) -> Result<Stack, ConfigError> {
    let config = Config::from_toml_str(toml)?;
    Stack::builder().config(config).env(env(vars)).build()
}

/// [`build`], for configs that are valid.
pub(crate) fn stack(toml: &str, vars: &[(&str, &str)]) -> Stack {
    build(toml, vars).unwrap_or_else(|e| panic!("the config is valid, yet:\n{e}"))
}

/// Asserts that `e` has a problem at `path` whose message contains `text`.
pub(crate) fn has(e: &ConfigError, path: &str, text: &str) {
    let found = (e.problems().iter()).any(|p| p.path == path && p.message.contains(text));
    assert!(found, "no problem `{path}: ...{text}...` in:\n{e}");
}

pub(crate) fn chat(model: &str, stream: bool) -> ChatRequest {
    ChatRequest::new(model, [Message::user("tell me a story")]).with_stream(stream)
}
