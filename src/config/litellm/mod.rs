//! Running a LiteLLM proxy config (`config.yaml`) as it is: its
//! `model_list`, `router_settings`, the fallbacks of `litellm_settings` and
//! the master key of `general_settings`, translated to a native [`Config`].
//!
//! Several deployments under one `model_name` become a balanced route named
//! after it; `fallbacks`, `default_fallbacks`, `context_window_fallbacks`
//! and `content_policy_fallbacks` become the routes' fallbacks and
//! `[fallback]`; `rpm`/`tpm` become `[limits]`; `num_retries` and
//! `retry_policy` `[retry]`; `timeout` and `stream_timeout` `[timeout]`;
//! `allowed_fails`, `cooldown_time` `[cooldown]`; `redis_*` `[store]`.
//! Every key not honoured as LiteLLM would honour it (callbacks, guardrails,
//! databases, budgets, unsupported providers, ...) is listed in
//! [`LiteLlmConfig::warnings`], never silently dropped. docs/LITELLM.md
//! has the whole mapping and where behaviour differs.
//!
//! `api_key: os.environ/VAR` becomes `api_key_env = "VAR"`. A key written
//! in the file is used as it is but never enters the native config: it is
//! served to the stack as `LITELLM_KEY_<PROVIDER>` by
//! [`LiteLlmConfig::env`], and a warning says so, without the key.
//!
//! # Example
//!
//! ```
//! use llm_fallback::Config;
//!
//! let litellm = Config::from_litellm_yaml_with_env(r#"
//! model_list:
//!   - model_name: gpt-4o
//!     litellm_params: { model: azure/gpt-4o-eu, api_base: "https://eu.openai.azure.com", api_key: os.environ/AZURE_EU_KEY, rpm: 600 }
//!   - model_name: gpt-4o
//!     litellm_params: { model: openai/gpt-4o, api_key: os.environ/OPENAI_API_KEY, rpm: 200 }
//! router_settings:
//!   num_retries: 3
//!   success_callback: ["langfuse"]
//! "#, |_| None).unwrap();
//! let config = &litellm.config;
//! assert_eq!(config.retry.max_retries.default, Some(3));
//! assert_eq!(config.limits.0["azure/gpt-4o-eu"].rpm, Some(600));
//! assert!(litellm.warnings.mentions("router_settings.success_callback", "not supported"));
//! ```

mod budget;
mod deployments;
mod model;
mod read;
mod routes;
mod secrets;
mod sections;
mod settings;
mod warnings;

pub use self::secrets::FileEnv;
pub use self::warnings::{Warning, Warnings};

use serde_norway::Value;

use self::read::{entries, Reader};
use self::secrets::Source;
use self::settings::Settings;
use super::types::Config;
use crate::chat::ConfigError;

/// A LiteLLM config translated: the native config, what it does not honour,
/// and the values the file holds itself.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct LiteLlmConfig {
    /// The equivalent native config (`check --litellm-config … --print`).
    pub config: Config,
    /// Every key not honoured as LiteLLM would.
    pub warnings: Warnings,
    /// Keys written in the file and its `environment_variables`, by the
    /// variable names `config` reads them from.
    pub file_env: FileEnv,
}

impl LiteLlmConfig {
    /// The environment a stack of [`config`](Self::config) reads: the file's
    /// own values first, then `env`'s.
    pub fn env(
        &self,
        env: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> impl Fn(&str) -> Option<String> + Send + Sync + 'static {
        let file = self.file_env.clone();
        move |name| file.lookup(name, &env)
    }
}

impl Config {
    /// Translates a LiteLLM proxy config, reading `os.environ/` values that
    /// are not secrets (`api_base`, `api_version`, `redis_host`) from the
    /// process's environment (feature `yaml`).
    pub fn from_litellm_yaml(text: &str) -> Result<LiteLlmConfig, ConfigError> {
        Self::from_litellm_yaml_with_env(text, |var| std::env::var(var).ok())
    }

    /// [`Config::from_litellm_yaml`], reading variables with `env`.
    pub fn from_litellm_yaml_with_env(
        text: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<LiteLlmConfig, ConfigError> {
        let tree: Value = serde_norway::from_str(text)
            .map_err(|e| ConfigError::new("", super::yaml::yaml_error(&e)))?;
        let mut r = Reader::new(&env);
        let mut file_env = FileEnv::default();
        let Some(top) = r.map("", &tree) else {
            return Err(ConfigError::new("", "the file is empty"));
        };
        let sections = entries(&mut r, "", top);
        let find = |name: &str| sections.iter().find(|(k, _)| k == name).map(|(_, v)| *v);
        if let Some(vars) = find("environment_variables") {
            environment_variables(&mut r, vars, &mut file_env);
        }
        let mut settings = Settings::default();
        // router_settings is read last: it wins, as in LiteLLM.
        for name in ["litellm_settings", "router_settings"] {
            if let Some(value) = find(name) {
                settings::read_section(&mut r, name, value, &mut settings);
            }
        }
        if let Some(value) = find("general_settings") {
            settings::read_general(&mut r, value, &mut settings);
        }
        for (name, _) in &sections {
            let known = [
                "model_list",
                "environment_variables",
                "litellm_settings",
                "router_settings",
                "general_settings",
            ];
            if !known.contains(&name.as_str()) {
                r.warnings.push(name.clone(), "not supported; ignored");
            }
        }
        let deployments = match find("model_list") {
            Some(list) => model::deployments(&mut r, list),
            None => {
                r.errors
                    .push("model_list", "a LiteLLM config needs a `model_list`");
                Vec::new()
            }
        };
        let mut config = Config::default();
        let groups = deployments::add_deployments(&mut r, deployments, &mut config, &mut file_env);
        routes::add_routes(&mut r, &groups, &settings, &mut config);
        sections::apply(&mut r, &settings, &mut config, &mut file_env);
        budget::raise_upstream_budget(&mut config);
        r.errors.into_result(LiteLlmConfig {
            config,
            warnings: r.warnings,
            file_env,
        })
    }
}

/// `environment_variables`: set for this run, as LiteLLM sets them.
fn environment_variables(r: &mut Reader<'_>, value: &Value, file_env: &mut FileEnv) {
    let Some(map) = r.map("environment_variables", value) else {
        return;
    };
    for (name, value) in entries(r, "environment_variables", map) {
        let path = read::join("environment_variables", &name);
        if !read::valid_var(&name) {
            r.errors.push(path, "not an environment variable's name");
            continue;
        }
        let Some(value) = r.plain(&path, value) else {
            continue;
        };
        r.warnings.push(
            path,
            "used for this run; the native config reads it from the environment (set it there)",
        );
        r.file_env.insert(name.clone(), value.clone());
        file_env.insert(name, Source::Literal(value));
    }
}
