//! Reading values out of a LiteLLM YAML tree, permissively: a key this
//! crate does not honour becomes a warning, a value of the wrong type a
//! problem with its path, and `os.environ/VAR` is resolved where LiteLLM
//! resolves it.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde_norway::{Mapping, Value};

use super::warnings::Warnings;
use crate::chat::ConfigError;

/// LiteLLM's marker of a value read from the environment.
pub(crate) const ENV_PREFIX: &str = "os.environ/";

/// A secret as the file gives it: the name of its variable, or the value
/// itself (never printed, never in `Debug`).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Secret {
    /// `os.environ/VAR`.
    Env(String),
    /// Written in the file.
    Literal(String),
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Secret::Env(var) => write!(f, "Env({var:?})"),
            Secret::Literal(_) => f.write_str("Literal(***)"),
        }
    }
}

/// What reading needs: the environment, and where problems and warnings go.
pub(crate) struct Reader<'a> {
    env: &'a dyn Fn(&str) -> Option<String>,
    /// The file's own `environment_variables`, which LiteLLM sets first.
    pub(crate) file_env: BTreeMap<String, String>,
    pub(crate) errors: ConfigError,
    pub(crate) warnings: Warnings,
}

impl<'a> Reader<'a> {
    /// A reader resolving `os.environ/` with `env`.
    pub(crate) fn new(env: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Reader {
            env,
            file_env: BTreeMap::new(),
            errors: ConfigError::default(),
            warnings: Warnings::default(),
        }
    }

    /// A variable: the file's `environment_variables` first, then the process's.
    pub(crate) fn var(&self, name: &str) -> Option<String> {
        (self.file_env.get(name).cloned())
            .or_else(|| (self.env)(name))
            .filter(|v| !v.is_empty())
    }

    /// `value` as a mapping, or a problem at `path`.
    pub(crate) fn map<'v>(&mut self, path: &str, value: &'v Value) -> Option<&'v Mapping> {
        match untag(value) {
            Value::Mapping(map) => Some(map),
            Value::Null => None,
            other => {
                self.wrong(path, other, "a mapping");
                None
            }
        }
    }

    /// `value` as a list, or a problem at `path`.
    pub(crate) fn list<'v>(&mut self, path: &str, value: &'v Value) -> Option<&'v [Value]> {
        match untag(value) {
            Value::Sequence(items) => Some(items),
            Value::Null => None,
            other => {
                self.wrong(path, other, "a list");
                None
            }
        }
    }

    /// A plain string (numbers too: `api_version: 2024-02-01` may parse as one).
    pub(crate) fn plain(&mut self, path: &str, value: &Value) -> Option<String> {
        match untag(value) {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Null => None,
            other => {
                self.wrong(path, other, "a string");
                None
            }
        }
    }

    /// A string that is not secret, `os.environ/VAR` resolved now (a problem
    /// when the variable is not set).
    pub(crate) fn text(&mut self, path: &str, value: &Value) -> Option<String> {
        let text = self.plain(path, value)?;
        match text.strip_prefix(ENV_PREFIX) {
            Some(var) => {
                let found = self.var(var);
                if found.is_none() {
                    self.errors.push(
                        path,
                        format!(
                            "environment variable {} is not set or empty",
                            shown_var(var)
                        ),
                    );
                }
                found
            }
            None => Some(text),
        }
    }

    /// A secret: the variable's name, or the value (kept, never shown).
    pub(crate) fn secret(&mut self, path: &str, value: &Value) -> Option<Secret> {
        let text = match untag(value) {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Null => return None,
            // Not repeated: it may be a key of an odd shape.
            _ => {
                self.errors.push(path, "expected a string");
                return None;
            }
        };
        match text.strip_prefix(ENV_PREFIX) {
            Some(var) if valid_var(var) => Some(Secret::Env(var.to_owned())),
            Some(_) => {
                self.errors
                    .push(path, "`os.environ/` must be followed by a variable name");
                None
            }
            None if text.is_empty() => None,
            None => Some(Secret::Literal(text)),
        }
    }

    /// A whole number ≥ 0, from a number, a numeric string or `os.environ/`.
    pub(crate) fn count(&mut self, path: &str, value: &Value) -> Option<u64> {
        let n = self.number(path, value)?;
        if n >= 0.0 && n.fract() == 0.0 && n <= u64::MAX as f64 {
            Some(n as u64)
        } else {
            self.errors
                .push(path, format!("expected a whole number ≥ 0, found {n}"));
            None
        }
    }

    /// A number of seconds.
    pub(crate) fn seconds(&mut self, path: &str, value: &Value) -> Option<Duration> {
        let n = self.number(path, value)?;
        match Duration::try_from_secs_f64(n) {
            Ok(d) => Some(d),
            Err(_) => {
                self.errors
                    .push(path, format!("{n} seconds is negative or too large"));
                None
            }
        }
    }

    /// A finite number.
    pub(crate) fn number(&mut self, path: &str, value: &Value) -> Option<f64> {
        let n = match untag(value) {
            Value::Number(n) => n.as_f64(),
            Value::String(_) => {
                let text = self.text(path, value)?;
                match text.trim().parse::<f64>() {
                    Ok(n) => Some(n),
                    Err(_) => {
                        self.errors
                            .push(path, format!("expected a number, found {:?}", shown(&text)));
                        return None;
                    }
                }
            }
            Value::Null => return None,
            other => {
                self.wrong(path, other, "a number");
                return None;
            }
        };
        match n.filter(|n| n.is_finite()) {
            Some(n) => Some(n),
            None => {
                self.errors.push(path, "expected a finite number");
                None
            }
        }
    }

    /// A boolean (`true`, `"True"` as LiteLLM's examples write it).
    pub(crate) fn flag(&mut self, path: &str, value: &Value) -> Option<bool> {
        match untag(value) {
            Value::Bool(b) => Some(*b),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
            Value::Null => None,
            other => {
                self.wrong(path, other, "true or false");
                None
            }
        }
    }

    /// A list of strings (or one string).
    pub(crate) fn names(&mut self, path: &str, value: &Value) -> Vec<String> {
        if let Value::String(s) = untag(value) {
            return vec![s.clone()];
        }
        let Some(items) = self.list(path, value) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            if let Some(s) = self.plain(&format!("{path}[{i}]"), item) {
                out.push(s);
            }
        }
        out
    }

    fn wrong(&mut self, path: &str, found: &Value, expected: &str) {
        self.errors
            .push(path, format!("expected {expected}, found {}", kind(found)));
    }
}

/// The entries of a mapping with string keys; other keys are problems.
pub(crate) fn entries<'v>(
    reader: &mut Reader<'_>,
    path: &str,
    map: &'v Mapping,
) -> Vec<(String, &'v Value)> {
    let mut out = Vec::new();
    for (key, value) in map {
        match untag(key) {
            Value::String(k) => out.push((k.clone(), value)),
            Value::Number(n) => out.push((n.to_string(), value)),
            other => reader
                .errors
                .push(path, format!("a key is {}, not a string", kind(other))),
        }
    }
    out
}

/// `parent.key`, or `key` at the top; a key that looks like a pasted
/// secret is shown as `***`.
pub(crate) fn join(parent: &str, key: &str) -> String {
    let quoted = format!("\"{key}\"");
    let key = match super::super::redact::redact_message(&quoted) == quoted {
        true => crate::settings::key_path(key),
        false => "***".to_owned(),
    };
    if parent.is_empty() {
        key
    } else {
        format!("{parent}.{key}")
    }
}

/// A value without its YAML tag (`!Tag value`).
fn untag(value: &Value) -> &Value {
    match value {
        Value::Tagged(t) => untag(&t.value),
        other => other,
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

/// Whether `name` can be an environment variable's name.
pub(crate) fn valid_var(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A variable name as a message may show it: never a pasted key.
fn shown_var(var: &str) -> String {
    if valid_var(var) {
        var.to_owned()
    } else {
        "(not a variable name)".to_owned()
    }
}

/// A foreign value as a message may show it: escaped, short, never a key.
fn shown(text: &str) -> String {
    let short: String = text.chars().take(40).collect();
    super::super::redact::redact_message(&format!("\"{short}\""))
        .trim_matches('"')
        .escape_debug()
        .to_string()
}
