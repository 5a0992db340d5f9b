//! Every unknown key and wrongly typed value of a config file at once.
//!
//! serde stops at the first error, so a config with three typos took three
//! runs to fix. When parsing fails, the document is read again as a plain
//! tree and deserialized with the path of each error tracked; the offending
//! key is taken out and the rest deserialized again, until nothing more is
//! wrong (or [`MAX_PROBLEMS`] are found).

use serde_path_to_error::Segment;

use crate::chat::ConfigError;

use super::types::Config;

/// Where collecting stops, so a file of garbage does not loop for long.
const MAX_PROBLEMS: usize = 50;

/// A parsed document: a TOML or JSON value.
pub(super) trait Tree: Clone + for<'de> serde::Deserializer<'de> {
    /// The child under `segment`, if any.
    fn child_mut(&mut self, segment: &Segment) -> Option<&mut Self>;
    /// Removes the child under `segment`; whether there was one.
    fn remove(&mut self, segment: &Segment) -> bool;
}

/// Every problem of `tree` with its dotted path, or `None` when there are
/// fewer than two (the parser's own message, with its line, says it best).
pub(super) fn collect<T: Tree>(mut tree: T) -> Option<ConfigError> {
    let mut found: Vec<(Vec<Segment>, String)> = Vec::new();
    while found.len() < MAX_PROBLEMS {
        let Err(e) = serde_path_to_error::deserialize::<_, Config>(tree.clone()) else {
            break;
        };
        let mut path: Vec<Segment> = e.path().iter().cloned().collect();
        let message = e.inner().to_string();
        // toml appends "in `table`" on its own line: the path says it.
        let message = message
            .split("\nin `")
            .next()
            .unwrap_or("")
            .trim()
            .to_owned();
        let under =
            |p: &Vec<Segment>| p.len() > path.len() && dotted(&p[..path.len()]) == dotted(&path);
        if message.starts_with("missing field") && found.iter().any(|(p, _)| under(p)) {
            // Caused by a key taken out below: take out the whole entry.
            if path.is_empty() || !remove(&mut tree, &path) {
                break;
            }
            continue;
        }
        // Some formats report an unknown key at its table: name it.
        let unknown = message
            .strip_prefix("unknown field `")
            .and_then(|rest| rest.split_once('`'))
            .map(|(key, _)| key.to_owned());
        if let Some(key) = unknown {
            let named = matches!(path.last(), Some(Segment::Map { key: last }) if *last == key);
            if !named {
                path.push(Segment::Map { key });
            }
        }
        let removed = !path.is_empty() && remove(&mut tree, &path);
        // A wrong value may be a pasted key: never echo one.
        found.push((path, super::redact::redact_message(&message)));
        if !removed {
            break;
        }
    }
    if found.len() < 2 {
        return None;
    }
    let mut errors = ConfigError::default();
    for (path, message) in &found {
        errors.push(dotted(path), message);
    }
    Some(errors)
}

/// Removes the value at `path` from `tree`.
fn remove<T: Tree>(tree: &mut T, path: &[Segment]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut node = tree;
    for segment in parents {
        match node.child_mut(segment) {
            Some(child) => node = child,
            None => return false,
        }
    }
    node.remove(last)
}

/// `providers.openai.keys[1].env`, keys quoted when they are not bare.
fn dotted(path: &[Segment]) -> String {
    let mut out = String::new();
    for segment in path {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(&crate::settings::key_path(key));
            }
            Segment::Enum { .. } | Segment::Unknown => {}
        }
    }
    out
}

impl Tree for serde_json::Value {
    fn child_mut(&mut self, segment: &Segment) -> Option<&mut Self> {
        match segment {
            Segment::Map { key } => self.as_object_mut()?.get_mut(key),
            Segment::Seq { index } => self.as_array_mut()?.get_mut(*index),
            Segment::Enum { .. } | Segment::Unknown => None,
        }
    }

    fn remove(&mut self, segment: &Segment) -> bool {
        match (self, segment) {
            (serde_json::Value::Object(map), Segment::Map { key }) => map.remove(key).is_some(),
            (serde_json::Value::Array(items), Segment::Seq { index }) if *index < items.len() => {
                items.remove(*index);
                true
            }
            _ => false,
        }
    }
}

#[cfg(feature = "toml")]
impl Tree for toml::Value {
    fn child_mut(&mut self, segment: &Segment) -> Option<&mut Self> {
        match segment {
            Segment::Map { key } => self.as_table_mut()?.get_mut(key),
            Segment::Seq { index } => self.as_array_mut()?.get_mut(*index),
            Segment::Enum { .. } | Segment::Unknown => None,
        }
    }

    fn remove(&mut self, segment: &Segment) -> bool {
        match (self, segment) {
            (toml::Value::Table(map), Segment::Map { key }) => map.remove(key).is_some(),
            (toml::Value::Array(items), Segment::Seq { index }) if *index < items.len() => {
                items.remove(*index);
                true
            }
            _ => false,
        }
    }
}
