//! Reading a config in YAML, on the same path and error model as TOML and
//! JSON: every unknown key and wrongly typed value at once, with its path,
//! and never a secret in a message.
//!
//! The parser is `serde_norway`, the maintained fork of `serde_yaml` 0.9:
//! its `Value` is a serde `Deserializer`, which the every-problem pass
//! (`problems::collect`) needs, and it builds on this crate's minimum Rust
//! (`serde-saphyr`, the other candidate, needs a newer one and has no such
//! value type; `serde_yaml` is deprecated, `serde_yml` unsound).

use super::problems::{self, Tree};
use super::redact::redact_message;
use super::types::Config;
use crate::chat::ConfigError;

use serde_norway::Value;
use serde_path_to_error::Segment;

impl Config {
    /// Reads a config in YAML (feature `yaml`): the same structure as TOML.
    pub fn from_yaml_str(text: &str) -> Result<Config, ConfigError> {
        serde_norway::from_str(text).map_err(|e| {
            let tree = serde_norway::from_str::<Value>(text).ok();
            (tree.and_then(problems::collect))
                .unwrap_or_else(|| ConfigError::new("", yaml_error(&e)))
        })
    }
}

/// A YAML error with quoted values that look secret replaced (the parser
/// quotes values but not source lines).
pub(crate) fn yaml_error(e: &serde_norway::Error) -> String {
    format!("invalid YAML: {}", redact_message(&e.to_string()))
}

impl Tree for Value {
    fn child_mut(&mut self, segment: &Segment) -> Option<&mut Self> {
        match (self, segment) {
            (Value::Mapping(map), Segment::Map { key }) => map.get_mut(key.as_str()),
            (Value::Sequence(items), Segment::Seq { index }) => items.get_mut(*index),
            (Value::Tagged(tagged), _) => tagged.value.child_mut(segment),
            _ => None,
        }
    }

    fn remove(&mut self, segment: &Segment) -> bool {
        match (self, segment) {
            (Value::Mapping(map), Segment::Map { key }) => map.remove(key.as_str()).is_some(),
            (Value::Sequence(items), Segment::Seq { index }) if *index < items.len() => {
                items.remove(*index);
                true
            }
            (Value::Tagged(tagged), _) => tagged.value.remove(segment),
            _ => false,
        }
    }
}
