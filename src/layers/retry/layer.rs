use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tower_layer::Layer;

use super::backoff::Backoff;
use super::budget::RetryBudget;
use super::policy::{ExponentialRetry, RetryPolicy};
use super::{Retry, Shared};
use crate::chat::{validate_all, ChatError, ConfigError, PerModel};
use crate::rng::SharedRng;

/// Applies [`Retry`] to a service. Services made from one layer share its
/// retry budget.
#[derive(Clone)]
pub struct RetryLayer {
    shared: Arc<Shared>,
}

impl RetryLayer {
    /// Up to `max_retries` retries per call, with the defaults of
    /// [`ExponentialRetry`] and [`RetryBudget`].
    pub fn new(max_retries: u32) -> Self {
        RetryLayer::builder()
            .max_retries(max_retries)
            .build()
            .expect("the defaults are valid")
    }

    /// Starts configuring a layer.
    pub fn builder() -> RetryBuilder {
        RetryBuilder {
            exponential: ExponentialRetry::default(),
            exponential_settings: Vec::new(),
            policy: None,
            budget: Some(RetryBudget::default()),
            rng: None,
        }
    }
}

impl Default for RetryLayer {
    /// [`ExponentialRetry::DEFAULT_MAX_RETRIES`] retries.
    fn default() -> Self {
        RetryLayer::new(ExponentialRetry::DEFAULT_MAX_RETRIES)
    }
}

impl<S> Layer<S> for RetryLayer {
    type Service = Retry<S>;

    fn layer(&self, inner: S) -> Retry<S> {
        Retry {
            inner,
            shared: self.shared.clone(),
        }
    }
}

impl fmt::Debug for RetryLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryLayer")
            .field("shared", &self.shared)
            .finish()
    }
}

/// Configures a [`RetryLayer`]. Every setting has a default: 2 retries per
/// model, [`Backoff::default`], `Retry-After` honoured up to 10 s, the default
/// [`RetryBudget`], an OS-seeded random source.
pub struct RetryBuilder {
    exponential: ExponentialRetry,
    /// Which built-in settings were used, to refuse them next to a custom policy.
    exponential_settings: Vec<&'static str>,
    policy: Option<Box<dyn RetryPolicy>>,
    budget: Option<RetryBudget>,
    rng: Option<SharedRng>,
}

impl RetryBuilder {
    fn built_in(mut self, setting: &'static str, f: impl FnOnce(&mut ExponentialRetry)) -> Self {
        f(&mut self.exponential);
        if !self.exponential_settings.contains(&setting) {
            self.exponential_settings.push(setting);
        }
        self
    }

    /// Retries per call: one value, or per model with a default (0 = none).
    /// Replaces earlier `max_retries_for` overrides.
    pub fn max_retries(self, max_retries: impl Into<PerModel<u32>>) -> Self {
        let max_retries = max_retries.into();
        self.built_in("max_retries", |p| p.max_retries = max_retries)
    }

    /// Retries per call for one model.
    pub fn max_retries_for(self, model: impl Into<String>, max_retries: u32) -> Self {
        let model = model.into();
        self.built_in("max_retries", |p| p.max_retries.set(model, max_retries))
    }

    /// The backoff: one, or per model with a default. Replaces earlier
    /// `backoff_for` overrides.
    pub fn backoff(self, backoff: impl Into<PerModel<Backoff>>) -> Self {
        let backoff = backoff.into();
        self.built_in("backoff", |p| p.backoff = backoff)
    }

    /// The backoff of one model.
    pub fn backoff_for(self, model: impl Into<String>, backoff: Backoff) -> Self {
        let model = model.into();
        self.built_in("backoff", |p| p.backoff.set(model, backoff))
    }

    /// The longest `Retry-After` worth waiting for (default 10 s). A provider
    /// asking for longer is not retried, so a fallback can act at once.
    pub fn max_retry_after(self, max: Duration) -> Self {
        self.built_in("max_retry_after", |p| p.max_retry_after = max)
    }

    /// Retries the failures `predicate` accepts, instead of the kinds
    /// [`ErrorKind::is_retryable`](crate::ErrorKind::is_retryable) names.
    pub fn retry_if(self, predicate: impl Fn(&ChatError) -> bool + Send + Sync + 'static) -> Self {
        self.built_in("retry_if", |p| p.retry_if = Some(Arc::new(predicate)))
    }

    /// Decides with `policy` instead of the built-in [`ExponentialRetry`]
    /// (whose settings above then cannot be used). The deadline and the
    /// budget still apply.
    pub fn policy(mut self, policy: impl RetryPolicy) -> Self {
        self.policy = Some(Box::new(policy));
        self
    }

    /// Limits retries to a share of calls (default [`RetryBudget::default`]).
    pub fn budget(mut self, budget: RetryBudget) -> Self {
        self.budget = Some(budget);
        self
    }

    /// Retries without a budget: only `max_retries` limits them.
    pub fn no_budget(mut self) -> Self {
        self.budget = None;
        self
    }

    /// The random source for jitter (default: seeded from the OS).
    pub fn rng(mut self, rng: SharedRng) -> Self {
        self.rng = Some(rng);
        self
    }

    /// The layer, or every problem with its configuration.
    pub fn build(self) -> Result<RetryLayer, ConfigError> {
        let mut errors = ConfigError::default();
        let p = &self.exponential;
        validate_all(
            "retry.max_retries",
            p.max_retries.overrides().map(|(model, _)| model),
            &mut errors,
        );
        validate_all(
            "retry.backoff",
            p.backoff.overrides().map(|(model, _)| model),
            &mut errors,
        );
        if self.policy.is_some() && !self.exponential_settings.is_empty() {
            errors.push(
                "retry.policy",
                format!(
                    "a custom policy replaces the built-in one, so {} cannot be set with it; \
                     configure them in the policy instead",
                    self.exponential_settings.join(", ")
                ),
            );
        }
        let policy = match self.policy {
            Some(policy) => policy,
            None => Box::new(self.exponential),
        };
        errors.into_result(RetryLayer {
            shared: Arc::new(Shared {
                policy,
                budget: self.budget,
                rng: self.rng.unwrap_or_default(),
            }),
        })
    }
}

impl fmt::Debug for RetryBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryBuilder")
            .field("exponential", &self.exponential)
            .field("custom_policy", &self.policy.is_some())
            .field("budget", &self.budget)
            .finish()
    }
}
