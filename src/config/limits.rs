//! `[limits]`: checked by the limit layer, against what the config serves.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::ctx::Ctx;
use crate::layers::limit::{InMemoryUsage, LimitConfig, LimitLayer};

impl Ctx<'_> {
    /// Checks `[limits]` with [`LimitLayer::from_config`]: keys are model
    /// ids that something serves (`served`). The section when it is valid.
    pub(crate) fn usage_limits(&mut self, served: &BTreeSet<String>) -> LimitConfig {
        let config = self.config;
        let store = Arc::new(InMemoryUsage::new());
        let served = |model: &str| served.contains(model);
        match LimitLayer::from_config(&config.limits, &self.scope, served, store) {
            Ok(_) => config.limits.clone(),
            Err(e) => {
                self.errors.extend(e);
                LimitConfig::default()
            }
        }
    }
}
