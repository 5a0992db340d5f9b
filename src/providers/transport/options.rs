//! What every client builder shares: the key, the extra headers and the
//! HTTP client ([`Options`], with the setters of [`shared_setters`]), and
//! the checks of a base URL.

use std::fmt;

use http::header::{HeaderName, HeaderValue, USER_AGENT};
use http::HeaderMap;
use reqwest::Url;

use super::upstream;
use super::Transport;
use crate::chat::ConfigError;
use crate::secret::ApiKey;

/// The setters every client builder shares, on a builder that keeps its
/// [`Options`] in a field named `options`: `api_key` and `header`, each with
/// the client's own doc (which header the key goes in), and `http_client`.
macro_rules! shared_setters {
    ($(#[$key_doc:meta])* api_key; $(#[$header_doc:meta])* header;) => {
        $(#[$key_doc])*
        pub fn api_key(mut self, key: impl Into<$crate::ApiKey>) -> Self {
            self.options.key = Some(key.into());
            self
        }

        $(#[$header_doc])*
        pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
            self.options.headers.push((name.into(), value.into()));
            self
        }

        /// Sends through `client` (shared pool, proxies, TLS and timeouts of
        /// your choice). Default: a client of the crate's own (hyper's
        /// pooled client with rustls, HTTP/2 by ALPN), with a connect timeout
        /// of [`DEFAULT_CONNECT`](crate::layers::timeout::DEFAULT_CONNECT), a read
        /// timeout of [`DEFAULT_READ`](crate::layers::timeout::DEFAULT_READ), and
        /// no redirects followed; a new `reqwest::Client` with the same
        /// timeouts instead when a proxy is set in the environment
        /// (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`) or the `rustls`
        /// feature is off.
        pub fn http_client(mut self, client: reqwest::Client) -> Self {
            self.options.client = Some(client);
            self
        }
    };
}
pub(crate) use shared_setters;

/// The options every client builder takes.
#[derive(Clone, Default)]
pub(crate) struct Options {
    pub(crate) key: Option<ApiKey>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) client: Option<reqwest::Client>,
}

impl Options {
    /// Checks the options; the key goes in `auth_header`, built by `auth`.
    /// `None` (with the problem in `errors`) when no HTTP client can be built.
    pub(crate) fn build(
        self,
        provider: &'static str,
        auth_header: HeaderName,
        auth: fn(&ApiKey) -> Result<HeaderValue, ConfigError>,
        errors: &mut ConfigError,
    ) -> Option<Transport> {
        let mut headers = HeaderMap::new();
        headers.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("llm-fallback/", env!("CARGO_PKG_VERSION"))),
        );
        if let Some(key) = &self.key {
            match auth(key) {
                Ok(value) => {
                    headers.insert(auth_header, value);
                }
                Err(e) => errors.extend(e),
            }
        }
        for (name, value) in &self.headers {
            let path = format!("headers.{name}");
            let Ok(name) = HeaderName::try_from(name.as_str()) else {
                errors.push(path, "not a valid HTTP header name");
                continue;
            };
            // Not echoed: an extra header may well hold a credential.
            let Ok(mut value) = HeaderValue::try_from(value.as_str()) else {
                errors.push(
                    path,
                    "the value contains characters not allowed in a header",
                );
                continue;
            };
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        let client = match self.client {
            Some(client) => upstream::Client::Reqwest(client),
            None => match upstream::Client::default_client() {
                Ok(client) => client,
                Err(e) => {
                    errors.push("http_client", format!("cannot build the HTTP client: {e}"));
                    return None;
                }
            },
        };
        Some(Transport {
            provider,
            client,
            headers,
            key: self.key,
        })
    }
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("key", &self.key)
            .field(
                "headers",
                &self.headers.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .field("shared_client", &self.client.is_some())
            .finish()
    }
}

/// Checks that `raw` is an absolute http(s) URL with a host and nothing
/// that would leak or break the paths appended to it.
pub(crate) fn parse_base_url(path: &str, raw: &str, errors: &mut ConfigError) -> Option<Url> {
    let url = match Url::parse(raw.trim()) {
        Ok(url) => url,
        Err(e) => {
            errors.push(path, format!("{raw:?} is not a valid http(s) URL: {e}"));
            return None;
        }
    };
    let problem = if !matches!(url.scheme(), "http" | "https") {
        Some(format!("{raw:?} is not an http(s) URL"))
    } else if url.host_str().is_none_or(str::is_empty) {
        Some(format!("{raw:?} has no host"))
    } else if !url.username().is_empty() || url.password().is_some() {
        // Not echoed: it holds credentials.
        Some("the URL must not contain credentials; use the api_key setting".to_owned())
    } else if url.query().is_some() || url.fragment().is_some() {
        Some(format!("{raw:?} must not have a query or a fragment"))
    } else {
        None
    };
    match problem {
        Some(p) => {
            errors.push(path, p);
            None
        }
        None => Some(url),
    }
}

/// `base` with `segments` appended to its path.
pub(crate) fn join(base: &Url, segments: &[&str]) -> Url {
    let mut url = base.clone();
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(segments);
    }
    url
}

/// `url` as a request's URI, for a URL a client derives from a checked
/// base URL (an `http::Uri` reads every URL the `url` crate writes; should
/// one not read, the call fails as misconfigured, never panics).
pub(crate) fn request_uri(url: &Url) -> Result<http::Uri, crate::ChatError> {
    http::Uri::try_from(url.as_str()).map_err(|e| {
        crate::ChatError::new(
            crate::ErrorKind::Config,
            format!("the provider URL cannot be requested: {e}"),
        )
    })
}

/// A client's checked base URL and transport, or every problem found
/// (`errors` holds those of `url` and `transport` already).
pub(crate) fn checked(
    errors: ConfigError,
    url: Option<Url>,
    transport: Option<Transport>,
) -> Result<(Url, Transport), ConfigError> {
    match (url, transport) {
        (Some(url), Some(transport)) if errors.is_empty() => Ok((url, transport)),
        _ => Err(errors),
    }
}
