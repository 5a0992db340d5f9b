//! `[limits]`: checked by the limit layer, against what the config serves.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::resolve::Ctx;
use crate::layers::limit::{InMemoryUsage, LimitConfig, LimitLayer};

impl Ctx<'_> {
    /// Checks `[limits]` with [`LimitLayer::from_config`]: keys are model
    /// ids that something serves (`served`). The section when it is valid.
    pub(crate) fn usage_limits(&mut self, served: &BTreeSet<String>) -> LimitConfig {
        let known = |model: &str| {
            if self.is_alias(model) {
                return Err(format!("limits take model ids; {model:?} is a route alias (give each of its models its own limits)"));
            }
            self.model_problem(model)?;
            if !served.contains(model) {
                return Err(format!(
                    "{model:?} is not served by any route, fallback group or `models` entry"
                ));
            }
            Ok(())
        };
        let config = self.config;
        let store = Arc::new(InMemoryUsage::new());
        match LimitLayer::from_config(&config.limits, store, known) {
            Ok(_) => config.limits.clone(),
            Err(e) => {
                self.errors.extend(e);
                LimitConfig::default()
            }
        }
    }
}
