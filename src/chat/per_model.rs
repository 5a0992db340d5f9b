//! Settings that take one value for every model, or a value per model with a default.

use std::collections::HashMap;

/// One value for all models, or a map from model id to value with a default.
///
/// ```
/// use llm_fallback::chat::PerModel;
/// let retries = PerModel::new(2).with("azure/gpt-4o", 0);
/// assert_eq!(*retries.get("azure/gpt-4o"), 0);
/// assert_eq!(*retries.get("openai/gpt-4o"), 2);
/// let same: PerModel<u32> = 3.into();
/// assert_eq!(*same.get("anything/at-all"), 3);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct PerModel<T> {
    default: T,
    models: HashMap<String, T>,
}

impl<T> PerModel<T> {
    /// `default` for every model.
    pub fn new(default: T) -> Self {
        PerModel {
            default,
            models: HashMap::new(),
        }
    }

    /// Overrides the value for one model id.
    pub fn with(mut self, model: impl Into<String>, value: T) -> Self {
        self.models.insert(model.into(), value);
        self
    }

    /// Overrides the value for one model id, in place.
    pub fn set(&mut self, model: impl Into<String>, value: T) {
        self.models.insert(model.into(), value);
    }

    /// The value for `model`.
    pub fn get(&self, model: &str) -> &T {
        self.models.get(model).unwrap_or(&self.default)
    }

    /// The default value.
    pub fn default_value(&self) -> &T {
        &self.default
    }

    /// The per-model overrides.
    pub fn overrides(&self) -> impl Iterator<Item = (&str, &T)> {
        self.models.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Applies `f` to the default and every override.
    pub fn map<U>(self, mut f: impl FnMut(T) -> U) -> PerModel<U> {
        PerModel {
            default: f(self.default),
            models: self.models.into_iter().map(|(k, v)| (k, f(v))).collect(),
        }
    }
}

impl<T: Default> Default for PerModel<T> {
    fn default() -> Self {
        PerModel::new(T::default())
    }
}

impl<T> From<T> for PerModel<T> {
    fn from(value: T) -> Self {
        PerModel::new(value)
    }
}
