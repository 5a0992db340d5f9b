//! Credentials as a config file names them: environment variables, never values.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::chat::ConfigError;
use crate::secret::{env_name_problem, ApiKey, EnvName};

/// One or several keys of a provider, as written in a config file.
///
/// The key itself never appears in the file: it names the environment
/// variable holding it (`env`), or holding several keys separated by commas
/// (`env_list`). Exactly one of the two is set.
///
/// | field | default | meaning |
/// |---|---|---|
/// | `label` | the variable's name | how logs and the attempt log name the key; with `env_list`, the keys are `label-1`, `label-2` ... |
/// | `env` | | the variable holding one key |
/// | `env_list` | | the variable holding comma-separated keys (blank entries are skipped) |
/// | `tier` | 0 | priority: tier 1 keys are used only when no tier 0 key is available |
/// | `weight` | 1 | share of the calls within its tier (at least 1) |
///
/// ```
/// use llm_fallback::providers::credentials::CredentialConfig;
///
/// let configs: Vec<CredentialConfig> = serde_json::from_str(r#"[
///     {"label": "paid", "env": "OPENAI_KEY_PAID", "weight": 3},
///     {"label": "free", "env_list": "OPENAI_FREE_KEYS", "tier": 1}
/// ]"#).unwrap();
///
/// let env = |var: &str| match var {
///     "OPENAI_KEY_PAID" => Some("sk-paid".to_owned()),
///     "OPENAI_FREE_KEYS" => Some("sk-free-1, sk-free-2".to_owned()),
///     _ => None,
/// };
/// let keys = CredentialConfig::resolve_all_with(&configs, "providers.openai.keys", env).unwrap();
/// let labels: Vec<_> = keys.iter().map(|k| (k.label.as_str(), k.tier, k.weight)).collect();
/// assert_eq!(labels, [("paid", 0, 3), ("free-1", 1, 1), ("free-2", 1, 1)]);
///
/// // A missing variable is named, a value never is.
/// let error = CredentialConfig::resolve_all_with(&configs, "keys", |_| None).unwrap_err();
/// assert!(error.to_string().contains("OPENAI_KEY_PAID"));
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialConfig {
    /// How the key is named in logs; default: the variable's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The environment variable holding one key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    /// The environment variable holding comma-separated keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_list: Option<String>,
    /// Priority, lowest first. Default 0.
    #[serde(default)]
    pub tier: u32,
    /// Share of the calls within the tier. Default 1.
    #[serde(default = "one")]
    pub weight: u32,
}

fn one() -> u32 {
    1
}

// By hand: a key pasted where a variable's name belongs is not shown.
impl fmt::Debug for CredentialConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialConfig")
            .field("label", &self.label)
            .field("env", &EnvName(self.env.as_deref()))
            .field("env_list", &EnvName(self.env_list.as_deref()))
            .field("tier", &self.tier)
            .field("weight", &self.weight)
            .finish()
    }
}

impl Default for CredentialConfig {
    /// No variable yet, tier 0, weight 1 (as when deserialized).
    fn default() -> Self {
        CredentialConfig {
            label: None,
            env: None,
            env_list: None,
            tier: 0,
            weight: 1,
        }
    }
}

/// A resolved key with its label, tier and weight. `Debug` redacts the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credential {
    /// How logs and the attempt log name it.
    pub label: String,
    /// Priority, lowest first.
    pub tier: u32,
    /// Share of the calls within the tier.
    pub weight: u32,
    /// The key.
    pub key: ApiKey,
}

impl Credential {
    /// A tier 0, weight 1 credential.
    pub fn new(label: impl Into<String>, key: impl Into<ApiKey>) -> Self {
        Credential {
            label: label.into(),
            tier: 0,
            weight: 1,
            key: key.into(),
        }
    }

    /// Sets the tier (0 is tried first).
    pub fn tier(mut self, tier: u32) -> Self {
        self.tier = tier;
        self
    }

    /// Sets the weight within the tier.
    pub fn weight(mut self, weight: u32) -> Self {
        self.weight = weight;
        self
    }
}

impl CredentialConfig {
    /// One key from the variable `var`.
    pub fn env(var: impl Into<String>) -> Self {
        CredentialConfig {
            env: Some(var.into()),
            ..Default::default()
        }
    }

    /// Comma-separated keys from the variable `var`.
    pub fn env_list(var: impl Into<String>) -> Self {
        CredentialConfig {
            env_list: Some(var.into()),
            ..Default::default()
        }
    }

    /// Sets the label.
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Sets the tier.
    pub fn tier(mut self, tier: u32) -> Self {
        self.tier = tier;
        self
    }

    /// Sets the weight.
    pub fn weight(mut self, weight: u32) -> Self {
        self.weight = weight;
        self
    }

    /// Reads the keys from the process environment; problems are reported
    /// under `path`, naming variables, never values.
    pub fn resolve(&self, path: &str) -> Result<Vec<Credential>, ConfigError> {
        self.resolve_with(path, |var| std::env::var(var).ok())
    }

    /// [`resolve`](Self::resolve) with `lookup` in place of the environment.
    pub fn resolve_with(
        &self,
        path: &str,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Vec<Credential>, ConfigError> {
        let mut errors = ConfigError::default();
        let keys = self.read(path, &lookup, &mut errors);
        errors.into_result(keys)
    }

    /// Resolves every entry from the process environment (entry `i` reported
    /// under `path[i]`), and checks that labels are unique.
    pub fn resolve_all(configs: &[Self], path: &str) -> Result<Vec<Credential>, ConfigError> {
        Self::resolve_all_with(configs, path, |var| std::env::var(var).ok())
    }

    /// [`resolve_all`](Self::resolve_all) with `lookup` in place of the environment.
    pub fn resolve_all_with(
        configs: &[Self],
        path: &str,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Vec<Credential>, ConfigError> {
        let mut errors = ConfigError::default();
        let mut keys: Vec<Credential> = Vec::new();
        for (i, config) in configs.iter().enumerate() {
            let entry = format!("{path}[{i}]");
            for key in config.read(&entry, &lookup, &mut errors) {
                if keys.iter().any(|k| k.label == key.label) {
                    let message = format!("the label {:?} is used twice", key.label);
                    errors.push(format!("{entry}.label"), message);
                }
                keys.push(key);
            }
        }
        if configs.is_empty() {
            errors.push(path, "no key is configured");
        }
        errors.into_result(keys)
    }

    fn read(
        &self,
        path: &str,
        lookup: &dyn Fn(&str) -> Option<String>,
        errors: &mut ConfigError,
    ) -> Vec<Credential> {
        if self.weight == 0 {
            errors.push(format!("{path}.weight"), "must be at least 1");
        }
        let (var, list) = match (&self.env, &self.env_list) {
            (Some(var), None) => (var, false),
            (None, Some(var)) => (var, true),
            _ => {
                errors.push(path, "set exactly one of `env` and `env_list`");
                return Vec::new();
            }
        };
        let field = if list { "env_list" } else { "env" };
        if let Some(problem) = env_name_problem(var) {
            errors.push(format!("{path}.{field}"), problem);
            return Vec::new();
        }
        let label = self.label.clone().unwrap_or_else(|| var.clone());
        if let Err(e) = validate_label(&label) {
            errors.push(format!("{path}.label"), e);
        }
        let value = lookup(var).unwrap_or_default();
        let keys: Vec<&str> = match list {
            true => value.split(',').map(str::trim).collect(),
            false => vec![value.trim()],
        };
        let keys: Vec<&str> = keys.into_iter().filter(|k| !k.is_empty()).collect();
        if keys.is_empty() {
            let message = format!("environment variable {var} is not set or empty");
            errors.push(format!("{path}.{field}"), message);
            return Vec::new();
        }
        let credential = |label: String, key: &str| Credential {
            label,
            tier: self.tier,
            weight: self.weight,
            key: ApiKey::new(key),
        };
        match list {
            false => vec![credential(label, keys[0])],
            true => (keys.iter().enumerate())
                .map(|(i, key)| credential(format!("{label}-{}", i + 1), key))
                .collect(),
        }
    }
}

/// Checks a key's label: 1 to 64 letters, digits, `-`, `_`, `.`. Labels are
/// written to logs, so they are kept short and plain.
pub(crate) fn validate_label(label: &str) -> Result<(), String> {
    if label.is_empty() || label.len() > 64 {
        return Err("a key's label must have 1 to 64 characters".to_owned());
    }
    match label
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        Some(c) => Err(format!(
            "the label {label:?} contains {c:?}; use letters, digits, '-', '_' or '.'"
        )),
        None => Ok(()),
    }
}
