//! The value shapes every config section uses (durations, "one value or per
//! model", switches), and the [`Scope`] that checks per-model keys.
//!
//! This module sits below the layers: each layer's own section
//! (`layers::<name>::config`) is written with these types, and its
//! `from_config` checks the section's model keys against a [`Scope`], so
//! that no layer needs the whole [`Config`](crate::Config).
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use llm_fallback::settings::{PerModelSetting, Scope};
//! use llm_fallback::ConfigError;
//!
//! let setting: PerModelSetting<u32> =
//!     serde_json::from_str(r#"{"default": 2, "models": {"fast": 0, "openai/o1": 1}}"#).unwrap();
//! let scope = Scope::new()
//!     .providers(["openai", "azure"])
//!     .route("fast", ["azure/gpt-4o-mini", "openai/gpt-4o-mini"]);
//! let mut errors = ConfigError::default();
//! let retries = scope.per_model("retry.max_retries", &setting, 2, &mut errors);
//! assert!(errors.is_empty());
//! assert_eq!(*retries.get("azure/gpt-4o-mini"), 0);
//! assert_eq!(*retries.get("openai/o1"), 1);
//! assert_eq!(*retries.get("openai/gpt-4o"), 2);
//! # let _ = Duration::ZERO;
//! ```

mod scope;
mod values;

pub use self::scope::Scope;
pub use self::values::{HumanDuration, PerModelSetting, Switch, TimeLimit};

pub(crate) use self::scope::{env_value, key_path, positive};
pub(crate) use self::values::from_value;
