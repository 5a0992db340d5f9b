//! API keys that never show up in logs, `Debug` output or error messages.

use std::fmt;
use std::sync::Arc;

use http::HeaderValue;

use crate::chat::ConfigError;

/// A provider credential.
///
/// Its `Debug` and `Display` print `ApiKey(****)`, so a client, a config or an
/// error that holds one can be logged safely. Header values built from it are
/// marked [sensitive](HeaderValue::set_sensitive), which keeps them out of
/// HTTP-level debug logs too. The key itself is only reachable through
/// [`expose`](Self::expose).
///
/// ```
/// use llm_fallback::ApiKey;
///
/// let key = ApiKey::new("sk-live-123");
/// assert_eq!(format!("{key:?} {key}"), "ApiKey(****) ApiKey(****)");
/// assert_eq!(key.expose(), "sk-live-123");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(Arc<str>);

impl ApiKey {
    /// Wraps `key`.
    pub fn new(key: impl Into<String>) -> Self {
        ApiKey(Arc::from(key.into()))
    }

    /// Reads the key from the environment variable `var`; a missing or empty
    /// variable is a [`ConfigError`] naming the variable (never a value).
    pub fn from_env(var: &str) -> Result<Self, ConfigError> {
        if let Some(problem) = env_name_problem(var) {
            return Err(ConfigError::new("api_key", problem));
        }
        match std::env::var(var) {
            Ok(key) if !key.trim().is_empty() => Ok(ApiKey::new(key.trim())),
            _ => Err(ConfigError::new(
                "api_key",
                format!("environment variable {var} is not set or empty"),
            )),
        }
    }

    /// The key itself. Keep it out of logs.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the key is empty or only whitespace.
    pub fn is_empty(&self) -> bool {
        self.0.trim().is_empty()
    }

    /// The key as a sensitive header value (`api-key: <key>`).
    pub fn header_value(&self) -> Result<HeaderValue, ConfigError> {
        self.sensitive(self.expose().to_owned())
    }

    /// The key as a sensitive bearer header value (`Authorization: Bearer <key>`).
    pub fn bearer_header_value(&self) -> Result<HeaderValue, ConfigError> {
        self.sensitive(format!("Bearer {}", self.expose()))
    }

    fn sensitive(&self, value: String) -> Result<HeaderValue, ConfigError> {
        if self.is_empty() {
            return Err(ConfigError::new("api_key", "the API key is empty"));
        }
        // The error must not echo the value: it holds the key.
        let mut value = HeaderValue::try_from(value).map_err(|_| {
            ConfigError::new(
                "api_key",
                "the API key contains characters not allowed in an HTTP header",
            )
        })?;
        value.set_sensitive(true);
        Ok(value)
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(****)")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(****)")
    }
}

impl From<String> for ApiKey {
    fn from(key: String) -> Self {
        ApiKey::new(key)
    }
}

impl From<&str> for ApiKey {
    fn from(key: &str) -> Self {
        ApiKey::new(key)
    }
}

/// Why `name` cannot be the name of an environment variable, in words that
/// never repeat it: a key (or a URL with a password) pasted where its
/// variable's name belongs must not be echoed by an error or a `Debug`.
///
/// A name is letters, digits and `_`, not starting with a digit, at most 128
/// bytes. A long name without `_` that mixes letters and digits is taken for
/// a key (a hex or base64 secret), not a name.
pub(crate) fn env_name_problem(name: &str) -> Option<&'static str> {
    let bytes = name.as_bytes();
    let valid = !bytes.is_empty()
        && bytes.len() <= 128
        && !bytes[0].is_ascii_digit()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'_');
    if !valid {
        return Some(
            "not a valid environment variable name (letters, digits and `_`, \
             not starting with a digit); the value is not shown in case it is a key",
        );
    }
    let has = |f: fn(&u8) -> bool| bytes.iter().any(f);
    if bytes.len() >= 24
        && !name.contains('_')
        && has(u8::is_ascii_digit)
        && has(u8::is_ascii_alphabetic)
    {
        return Some(
            "looks like a key, not the name of the environment variable holding it; \
             the value is not shown",
        );
    }
    None
}

/// `Debug` for a field naming an environment variable: the name, unless it
/// is not one (then it may be a pasted key).
pub(crate) struct EnvName<'a>(pub(crate) Option<&'a str>);

impl fmt::Debug for EnvName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            None => f.write_str("None"),
            Some(name) if env_name_problem(name).is_some() => {
                f.write_str("Some(<not a name; hidden>)")
            }
            Some(name) => write!(f, "Some({name:?})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_are_sensitive_and_errors_hide_the_key() {
        let key = ApiKey::new("sk-secret");
        assert!(key.bearer_header_value().unwrap().is_sensitive());
        assert_eq!(key.bearer_header_value().unwrap(), "Bearer sk-secret");
        assert!(key.header_value().unwrap().is_sensitive());

        let bad = ApiKey::new("sk-secret\nx");
        let e = bad.header_value().unwrap_err().to_string();
        assert!(!e.contains("sk-secret"), "{e}");
        assert!(ApiKey::new("  ").header_value().is_err());
    }
}
