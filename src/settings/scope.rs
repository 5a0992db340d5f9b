//! Checking the model keys of per-model settings: model ids of configured
//! providers, or route aliases standing for their models.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::values::PerModelSetting;
use crate::chat::{split_model_id, validate_model_id, ConfigError, PerModel};
use crate::secret::env_name_problem;

/// What per-model keys may name: model ids of the configured providers, and
/// route aliases, each standing for the models it may call.
///
/// [`Scope::new`] takes any well-formed model id and no alias; a
/// [`Config`](crate::Config) builds the scope of its providers and routes.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    /// `None`: any provider.
    providers: Option<BTreeSet<String>>,
    /// Alias -> the concrete models it may call (empty when it cannot be
    /// expanded, e.g. a cycle: such a key sets nothing).
    routes: BTreeMap<String, Vec<String>>,
}

impl Scope {
    /// Any well-formed model id, no route alias.
    pub fn new() -> Self {
        Scope::default()
    }

    /// Only model ids of these providers.
    pub fn providers<I>(mut self, names: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.providers = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// `alias` stands for `models`.
    pub fn route<I>(mut self, alias: impl Into<String>, models: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        (self.routes).insert(alias.into(), models.into_iter().map(Into::into).collect());
        self
    }

    /// Whether `name` is a route alias.
    pub fn is_alias(&self, name: &str) -> bool {
        self.routes.contains_key(name)
    }

    /// The models `alias` may call (none for a model id).
    pub fn models_of(&self, alias: &str) -> &[String] {
        self.routes.get(alias).map_or(&[], Vec::as_slice)
    }

    /// Checks a model id (well formed, its provider configured); a problem
    /// goes to `errors` under `path`.
    pub fn check_model(&self, path: &str, id: &str, errors: &mut ConfigError) -> bool {
        if let Err(e) = validate_model_id(id) {
            errors.push(path, e);
            return false;
        }
        let Some(providers) = &self.providers else {
            return true;
        };
        let (provider, _) = split_model_id(id).expect("validated");
        if providers.contains(provider) {
            return true;
        }
        let known: Vec<String> = providers.iter().map(|p| format!("{p:?}")).collect();
        let known = if known.is_empty() {
            "no provider is configured".to_owned()
        } else {
            format!("configured: {}", known.join(", "))
        };
        errors.push(
            path,
            format!("model {id:?} names provider {provider:?}, which is not configured ({known})"),
        );
        false
    }

    /// A per-model setting with route aliases among its keys expanded (a
    /// model's own entry wins over an alias's); `builtin` where it sets
    /// nothing. Keys that are neither are reported under `path.models.<key>`.
    pub fn per_model<T: Clone>(
        &self,
        path: &str,
        setting: &PerModelSetting<T>,
        builtin: T,
        errors: &mut ConfigError,
    ) -> PerModel<T> {
        let mut per = PerModel::new(setting.default.clone().unwrap_or(builtin));
        let mut own = BTreeSet::new();
        for (key, value) in &setting.models {
            let at = format!("{path}.models.{}", key_path(key));
            if !self.is_alias(key) && self.check_model(&at, key, errors) {
                per.set(key.clone(), value.clone());
                own.insert(key.clone());
            }
        }
        for (key, value) in setting.models.iter().filter(|(k, _)| self.is_alias(k)) {
            for model in self.models_of(key) {
                if !own.contains(model) {
                    per.set(model.clone(), value.clone());
                }
            }
        }
        per
    }
}

/// A key as it would be written in a dotted path: quoted unless it is bare.
pub(crate) fn key_path(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if bare {
        key.to_owned()
    } else {
        format!("{key:?}")
    }
}

/// Reports a zero duration under `path`.
pub(crate) fn positive(errors: &mut ConfigError, path: &str, d: Duration, hint: &str) {
    if d.is_zero() {
        errors.push(path, format!("must be more than zero{hint}"));
    }
}

/// Reads an environment variable that must be set and not empty; the
/// problem (which never shows a value) goes to `errors` under `path`.
pub(crate) fn env_value(
    env: &dyn Fn(&str) -> Option<String>,
    path: &str,
    var: &str,
    errors: &mut ConfigError,
) -> Option<String> {
    if let Some(problem) = env_name_problem(var) {
        errors.push(path, problem);
        return None;
    }
    match env(var) {
        Some(value) if !value.trim().is_empty() => Some(value.trim().to_owned()),
        _ => {
            errors.push(
                path,
                format!("environment variable {var} is not set or empty"),
            );
            None
        }
    }
}
