//! What the checks of a config share: the config, the environment, the
//! scope of model ids, and the problems found so far. The checks
//! (`providers`, `routes`, `fallback`, `recovery`, `limits`, `messages`)
//! build on this and not on each other; `check` runs them in order.

use std::collections::BTreeSet;

use super::types::Config;
use crate::chat::{ConfigError, PerModel};
use crate::settings::{env_value, PerModelSetting, Scope};

/// Looks up an environment variable.
pub(crate) type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// What checking needs, and the problems found so far.
pub(crate) struct Ctx<'a> {
    pub(crate) config: &'a Config,
    pub(crate) env: Env<'a>,
    /// Providers supplied as services in code: no client, no key needed.
    pub(crate) supplied: BTreeSet<String>,
    /// Every provider name model ids may use.
    pub(crate) providers: BTreeSet<String>,
    /// The providers, and the aliases with the models they call once expanded.
    pub(crate) scope: Scope,
    pub(crate) errors: ConfigError,
}

impl<'a> Ctx<'a> {
    /// Ready to check `config`; `supplied` names providers given as services.
    pub(crate) fn new(config: &'a Config, env: Env<'a>, supplied: &BTreeSet<String>) -> Self {
        // Invalid names are reported once, not listed as configured.
        let providers: BTreeSet<String> = (config.providers.keys())
            .chain(supplied)
            .filter(|name| {
                crate::chat::validate_provider_name(name).is_ok() && !name.starts_with('_')
            })
            .cloned()
            .collect();
        let mut scope = Scope::new().providers(providers.iter().cloned());
        for alias in config.routes.keys() {
            scope = scope.route(alias.clone(), Vec::<String>::new());
        }
        Ctx {
            config,
            env,
            supplied: supplied.clone(),
            providers,
            scope,
            errors: ConfigError::default(),
        }
    }

    /// Whether `name` is a route alias.
    pub(crate) fn is_alias(&self, name: &str) -> bool {
        self.scope.is_alias(name)
    }

    /// Checks a model id: well formed, and its provider configured.
    pub(crate) fn check_model(&mut self, path: &str, id: &str) -> bool {
        self.scope.check_model(path, id, &mut self.errors)
    }

    /// Checks a model id or a route alias.
    pub(crate) fn check_target(&mut self, path: &str, id: &str) {
        if !self.is_alias(id) {
            self.check_model(path, id);
        }
    }

    /// Reads an environment variable that must be set and not empty.
    pub(crate) fn env_value(&mut self, path: &str, var: &str) -> Option<String> {
        env_value(self.env, path, var, &mut self.errors)
    }

    /// A per-model setting with route aliases among its keys expanded.
    pub(crate) fn per_model<T: Clone>(
        &mut self,
        path: &str,
        setting: &PerModelSetting<T>,
        builtin: T,
    ) -> PerModel<T> {
        self.scope
            .per_model(path, setting, builtin, &mut self.errors)
    }
}
