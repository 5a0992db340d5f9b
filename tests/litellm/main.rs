//! LiteLLM proxy configs run as they are: LiteLLM's documented example
//! configs translate to the expected native configs, what is not honoured
//! is one warning, keys written in the file are never printed, and the
//! failoverbench-style config fails over through the gateway binary as its
//! printed native twin does.
#![cfg(all(feature = "yaml", feature = "toml"))]

mod docs;
mod hostile;
mod print;
#[cfg(feature = "gateway")]
mod serve;

use std::collections::HashMap;

use llm_fallback::config::litellm::LiteLlmConfig;
use llm_fallback::Config;

/// A lookup of `vars` only.
pub(crate) fn env(
    vars: &[(&str, &str)],
) -> impl Fn(&str) -> Option<String> + Send + Sync + 'static {
    let vars: HashMap<String, String> = (vars.iter())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| vars.get(name).cloned()
}

/// `yaml` translated, reading `vars`; panics with the problems.
pub(crate) fn translate(yaml: &str, vars: &[(&str, &str)]) -> LiteLlmConfig {
    Config::from_litellm_yaml_with_env(yaml, env(vars))
        .unwrap_or_else(|e| panic!("the LiteLLM config translates:\n{e}"))
}

/// `toml` as a native config; panics with the problems.
pub(crate) fn native(toml: &str) -> Config {
    Config::from_toml_str(toml).unwrap_or_else(|e| panic!("the expected config parses:\n{e}"))
}
