//! API keys that never show up in logs, `Debug` output or error messages.

use std::fmt;
use std::sync::Arc;

use http::HeaderValue;

use crate::error::ConfigError;

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
