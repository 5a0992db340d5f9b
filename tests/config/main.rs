//! Config files: every accepted form, TOML/JSON equivalence, and every
//! validation error reported at once with its path.
#![cfg(feature = "toml")]

mod forms;
mod problems;
mod stack;
mod yaml;

use std::collections::HashMap;
use std::time::Duration;

use llm_fallback::chat::Role;
use llm_fallback::config::{ProviderKind, RouteConfig};
use llm_fallback::layers::fallback::GroupsSetting;
use llm_fallback::layers::retry::JitterSetting;
use llm_fallback::settings::{HumanDuration, PerModelSetting, Switch, TimeLimit};
use llm_fallback::{Config, ConfigError, Stack};

pub(crate) fn env(
    vars: &[(&str, &str)],
) -> impl Fn(&str) -> Option<String> + Send + Sync + 'static {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| vars.get(name).cloned()
}

pub(crate) fn problems(e: &ConfigError) -> Vec<String> {
    e.to_string().lines().map(str::to_owned).collect()
}

/// Asserts that `e` has a problem starting with `path: ` and containing `text`.
pub(crate) fn has(e: &ConfigError, path: &str, text: &str) {
    let found = e
        .problems()
        .iter()
        .any(|p| p.path == path && p.message.contains(text));
    assert!(found, "no problem `{path}: ...{text}...` in:\n{e}");
}
