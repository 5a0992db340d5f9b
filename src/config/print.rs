//! Writing a config back out as TOML (`llm-fallback check --print`), such
//! that reading the text again gives the same [`Config`].

use super::types::Config;
use crate::chat::ConfigError;

impl Config {
    /// The config as TOML (feature `toml`), without the tables that only
    /// repeat defaults; [`Config::from_toml_str`] reads it back to an equal
    /// `Config`. Keys are never in a `Config` (only the names of the
    /// variables holding them), so none can be printed; a Redis URL given
    /// inline (`store.url`) is printed with its password hidden, the one
    /// value that does not read back the same.
    pub fn to_toml_string(&self) -> Result<String, ConfigError> {
        let fail = |e: &dyn std::fmt::Display| {
            ConfigError::new("", format!("cannot write the config as TOML: {e}"))
        };
        let mut shown = self.clone();
        if let Some(url) = shown.store.url.take() {
            shown.store.url = Some(crate::store::redact_url(&url));
        }
        let mut tree = toml::Value::try_from(&shown).map_err(|e| fail(&e))?;
        let reads_back = |tree: &toml::Value| -> bool {
            let text = toml::to_string(tree).unwrap_or_default();
            Config::from_toml_str(&text).ok().as_ref() == Some(&shown)
        };
        // The shortest text that reads back the same: each empty table,
        // empty list or `false` that only repeats a default is left out.
        let mut candidates = Vec::new();
        defaults(&tree, &mut Vec::new(), &mut candidates);
        for path in candidates {
            let mut shorter = tree.clone();
            if remove(&mut shorter, &path) && reads_back(&shorter) {
                tree = shorter;
            }
        }
        toml::to_string(&tree).map_err(|e| fail(&e))
    }
}

/// The paths of the values that may only repeat a default, deepest first.
fn defaults(value: &toml::Value, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match value {
        toml::Value::Table(table) => {
            for (key, child) in table {
                path.push(key.clone());
                defaults(child, path, out);
                path.pop();
            }
            if hollow(value) {
                out.push(path.clone());
            }
        }
        toml::Value::Array(a) if a.is_empty() => out.push(path.clone()),
        toml::Value::Boolean(false) => out.push(path.clone()),
        _ => {}
    }
}

/// Whether `value` is a table of nothing but tables of nothing.
fn hollow(value: &toml::Value) -> bool {
    match value {
        toml::Value::Table(t) => t.values().all(hollow),
        _ => false,
    }
}

/// Removes the value at `path` if it is a leaf or a hollow table.
fn remove(tree: &mut toml::Value, path: &[String]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut node = tree;
    for key in parents {
        match node.get_mut(key.as_str()) {
            Some(child) => node = child,
            None => return false,
        }
    }
    let Some(table) = node.as_table_mut() else {
        return false;
    };
    match table.get(last) {
        Some(t @ toml::Value::Table(_)) if !hollow(t) => false,
        Some(_) => table.remove(last).is_some(),
        None => false,
    }
}
