//! [`LimitLayer`] and its builder: from code, or from the `[limits]` section.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use tower_layer::Layer;

use super::config::{LimitConfig, Limits};
use super::memory::InMemoryUsage;
use super::store::UsageStore;
use super::view::{Shared, UsageView};
use super::Limit;
use crate::chat::{validate_model_id, ConfigError};
use crate::settings::Scope;

/// Applies [`Limit`] to a service. Cheap to clone: every service it makes
/// shares its limits and its store.
#[derive(Clone)]
pub struct LimitLayer {
    pub(super) shared: Arc<Shared>,
}

impl LimitLayer {
    /// Starts a builder (no limits, counts in memory).
    pub fn builder() -> LimitBuilder {
        LimitBuilder::default()
    }

    /// Builds the layer from the `[limits]` section, counting in `store`.
    /// Keys must be model ids of `scope` (not its route aliases) that
    /// something serves (`served`; `|_| true` when anything is); every
    /// problem is reported under `limits.<model id>`.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use llm_fallback::layers::limit::{InMemoryUsage, LimitConfig, LimitLayer};
    /// use llm_fallback::settings::Scope;
    ///
    /// let config: LimitConfig = serde_json::from_str(
    ///     r#"{"azure/gpt-4o": {"rpm": 600, "tpm": 150000}, "openai/gpt-4o": {"rpm": 0}}"#,
    /// ).unwrap();
    /// let store = Arc::new(InMemoryUsage::new());
    /// let e = LimitLayer::from_config(&config, &Scope::new(), |_| true, store).unwrap_err();
    /// assert_eq!(e.to_string(), r#"limits."openai/gpt-4o".rpm: must be at least 1 (leave it out for no limit)"#);
    /// ```
    pub fn from_config(
        config: &LimitConfig,
        scope: &Scope,
        served: impl Fn(&str) -> bool,
        store: Arc<dyn UsageStore>,
    ) -> Result<LimitLayer, ConfigError> {
        let mut errors = ConfigError::default();
        let limits = config.check(scope, served, &mut errors);
        errors.into_result(LimitLayer::new(limits, store))
    }

    fn new(limits: impl IntoIterator<Item = (String, Limits)>, store: Arc<dyn UsageStore>) -> Self {
        LimitLayer {
            shared: Arc::new(Shared::new(limits, store)),
        }
    }

    /// The read-only view of the limits and usage, for a balance layer to
    /// rank by ([`BalanceBuilder::usage`](crate::BalanceBuilder::usage)).
    pub fn usage(&self) -> UsageView {
        UsageView::new(self.shared.clone())
    }
}

impl<S> Layer<S> for LimitLayer {
    type Service = Limit<S>;

    fn layer(&self, inner: S) -> Limit<S> {
        Limit::new(inner, self.clone())
    }
}

impl fmt::Debug for LimitLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LimitLayer")
            .field("models", &self.shared.len())
            .finish_non_exhaustive()
    }
}

/// Builds a [`LimitLayer`]. Every mistake is reported by
/// [`build`](Self::build), together.
///
/// Defaults: no limits, counts in a new [`InMemoryUsage`].
#[derive(Default)]
pub struct LimitBuilder {
    limits: BTreeMap<String, Limits>,
    store: Option<Arc<dyn UsageStore>>,
}

impl LimitBuilder {
    /// Never sends `model` more than `limits` per minute: a call that would
    /// exceed one is refused like a call to a cooling model. A later call
    /// for the same model replaces its limits.
    pub fn limits(mut self, model: impl Into<String>, limits: Limits) -> Self {
        self.limits.insert(model.into(), limits);
        self
    }

    /// Counts usage in `store` instead of a new [`InMemoryUsage`]: one of
    /// its own, or one shared (with other limit layers, or a
    /// [`RedisUsage`](super::RedisUsage) for several processes).
    pub fn store(mut self, store: Arc<dyn UsageStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// The layer, or every problem found.
    pub fn build(self) -> Result<LimitLayer, ConfigError> {
        let mut errors = ConfigError::default();
        for (model, l) in &self.limits {
            let path = format!("limits.{model}");
            if let Err(e) = validate_model_id(model) {
                errors.push(&path, e);
            }
            if l.rpm == Some(0) || l.tpm == Some(0) {
                errors.push(&path, "a limit of 0 would never admit a call");
            }
        }
        let store = self.store.unwrap_or_else(|| Arc::new(InMemoryUsage::new()));
        errors.into_result(LimitLayer::new(self.limits, store))
    }
}

impl fmt::Debug for LimitBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LimitBuilder")
            .field("limits", &self.limits)
            .field("store", &self.store.as_ref().map(|_| ".."))
            .finish()
    }
}
