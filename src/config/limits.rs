//! `[limits]`: each deployment's requests and tokens per minute, checked.

use std::collections::{BTreeMap, BTreeSet};

use super::ctx::Ctx;
use crate::layers::usage::Limits;
use crate::settings::key_path;

impl Ctx<'_> {
    /// Checks `[limits]`: keys are model ids that something serves (`served`).
    pub(crate) fn usage_limits(&mut self, served: &BTreeSet<String>) -> BTreeMap<String, Limits> {
        let config = self.config;
        let mut out = BTreeMap::new();
        for (model, limits) in &config.limits {
            let path = format!("limits.{}", key_path(model));
            let before = self.errors.problems().len();
            if self.is_alias(model) {
                self.errors.push(
                    &path,
                    format!("limits take model ids; {model:?} is a route alias (give each of its models its own limits)"),
                );
            } else if self.check_model(&path, model) && !served.contains(model) {
                self.errors.push(
                    &path,
                    format!(
                        "{model:?} is not served by any route, fallback group or `models` entry"
                    ),
                );
            }
            if !limits.is_limited() {
                self.errors.push(&path, "gives neither `rpm` nor `tpm`");
            }
            for (field, value) in [("rpm", limits.rpm), ("tpm", limits.tpm)] {
                if value == Some(0) {
                    self.errors.push(
                        format!("{path}.{field}"),
                        "must be at least 1 (leave it out for no limit)",
                    );
                }
            }
            if self.errors.problems().len() == before {
                out.insert(model.clone(), *limits);
            }
        }
        out
    }
}
