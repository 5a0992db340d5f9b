//! The plain data of limits: one model's [`Limits`], and the `[limits]`
//! section ([`LimitConfig`]) that [`LimitLayer::from_config`](super::LimitLayer::from_config) checks.

use std::collections::BTreeMap;
use std::ops::Deref;

use serde::{Deserialize, Serialize};

use crate::chat::ConfigError;
use crate::settings::{key_path, Scope};

/// A deployment's limits per minute, as its provider enforces them. `None`:
/// no limit of that kind.
///
/// ```
/// use llm_fallback::layers::limit::Limits;
/// let limits = Limits::default().with_rpm(60).with_tpm(90_000);
/// assert_eq!(limits, serde_json::from_str(r#"{"rpm": 60, "tpm": 90000}"#).unwrap());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Requests per minute.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rpm: Option<u64>,
    /// Tokens (prompt and completion) per minute.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tpm: Option<u64>,
}

impl Limits {
    /// At most `rpm` requests per minute.
    pub fn with_rpm(mut self, rpm: u64) -> Self {
        self.rpm = Some(rpm);
        self
    }

    /// At most `tpm` tokens per minute.
    pub fn with_tpm(mut self, tpm: u64) -> Self {
        self.tpm = Some(tpm);
        self
    }

    /// Whether any limit is set.
    pub fn is_limited(&self) -> bool {
        self.rpm.is_some() || self.tpm.is_some()
    }

    /// How full the window is, from 0 (unused, or no limit) to 1 and beyond:
    /// the larger of the request and token shares.
    pub fn utilization(&self, requests: u64, tokens: u64) -> f64 {
        let share = |used: u64, limit: Option<u64>| match limit {
            Some(limit) if limit > 0 => used as f64 / limit as f64,
            Some(_) => f64::INFINITY,
            None => 0.0,
        };
        share(requests, self.rpm).max(share(tokens, self.tpm))
    }

    /// Whether one more request of `tokens` fits beside `requests` and `used` tokens.
    pub fn admits(&self, requests: u64, used: u64, tokens: u64) -> bool {
        self.rpm.is_none_or(|rpm| requests < rpm)
            && self
                .tpm
                .is_none_or(|tpm| used.saturating_add(tokens) <= tpm)
    }
}

/// The `[limits]` section: model id -> its [`Limits`].
///
/// ```toml
/// [limits]
/// "azure/gpt-4o" = { rpm = 600, tpm = 90000 }
/// "azure/gpt-4o-mini" = { rpm = 1000 }
/// ```
///
/// Keys are model ids (not route aliases); each gives `rpm`, `tpm` or both,
/// at least 1. [`LimitLayer::from_config`](super::LimitLayer::from_config)
/// checks it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LimitConfig(pub BTreeMap<String, Limits>);

impl Deref for LimitConfig {
    type Target = BTreeMap<String, Limits>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl<K: Into<String>> FromIterator<(K, Limits)> for LimitConfig {
    fn from_iter<I: IntoIterator<Item = (K, Limits)>>(iter: I) -> Self {
        LimitConfig(iter.into_iter().map(|(k, l)| (k.into(), l)).collect())
    }
}

impl LimitConfig {
    /// The entries that pass every check; each problem goes to `errors`,
    /// under `limits.<model id>`. Keys are model ids of `scope` (not its
    /// aliases) that something serves (`served`).
    pub(super) fn check(
        &self,
        scope: &Scope,
        served: impl Fn(&str) -> bool,
        errors: &mut ConfigError,
    ) -> BTreeMap<String, Limits> {
        let mut out = BTreeMap::new();
        for (model, limits) in &self.0 {
            let path = format!("limits.{}", key_path(model));
            let before = errors.problems().len();
            if scope.is_alias(model) {
                errors.push(
                    &path,
                    format!("limits take model ids; {model:?} is a route alias (give each of its models its own limits)"),
                );
            } else if scope.check_model(&path, model, errors) && !served(model) {
                errors.push(
                    &path,
                    format!(
                        "{model:?} is not served by any route, fallback group or `models` entry"
                    ),
                );
            }
            if !limits.is_limited() {
                errors.push(&path, "gives neither `rpm` nor `tpm`");
            }
            for (field, value) in [("rpm", limits.rpm), ("tpm", limits.tpm)] {
                if value == Some(0) {
                    errors.push(
                        format!("{path}.{field}"),
                        "must be at least 1 (leave it out for no limit)",
                    );
                }
            }
            if errors.problems().len() == before {
                out.insert(model.clone(), *limits);
            }
        }
        out
    }
}
