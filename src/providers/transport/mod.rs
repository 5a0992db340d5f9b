//! What every HTTP provider client shares: configuration checks, one POST,
//! and turning its outcome into a response or a typed error.
//!
//! A client supplies its [`Wire`]: how a request is encoded, how a 2xx body
//! becomes a completion, and how stream events become chunks. Everything else
//! (headers, key redaction, status and transport errors, the commit point,
//! stream faults, logs) is the same for every provider.

pub(crate) mod body;
pub(crate) mod error;
pub(crate) mod events;
#[cfg(all(test, feature = "openai", feature = "anthropic"))]
mod proptests;
pub(crate) mod sse;

use std::fmt;

use http::header::{HeaderName, HeaderValue, ACCEPT, CONTENT_TYPE, USER_AGENT};
use http::HeaderMap;
use reqwest::Url;
use serde_json::Value;
use tokio::time::Instant;

use self::error::EXCERPT_CHARS;
use self::sse::{Decode, SseChunks};
use crate::chat::streaming::HeadersDeadline;
use crate::chat::{
    ChatCompletion, ChatError, ConfigError, ErrorKind, MalformedChunks, TimeoutKind,
};
use crate::providers::http_error::{excerpt, send_error};
use crate::secret::ApiKey;
use crate::{ChatRequest, ChatResponse};

/// What differs between provider APIs.
pub(crate) trait Wire: Send + Sync + 'static {
    /// Reads the events of a streamed answer.
    type Events: Decode;

    /// The JSON body to POST for `request` (the model name is already the
    /// provider's own). An error here is the attempt's error: nothing is sent.
    fn encode(&self, request: &ChatRequest) -> Result<Vec<u8>, ChatError>;

    /// A 2xx JSON body (already checked not to be an error) as a completion,
    /// or what is wrong with it.
    fn completion(&self, body: Value) -> Result<ChatCompletion, String>;

    /// A fresh reader for the stream answering `request`.
    fn events(&self, request: &ChatRequest) -> Self::Events;
}

/// The HTTP side of a client: the reqwest client and the headers of every call.
#[derive(Clone)]
pub(crate) struct Transport {
    /// `openai`, `azure` or `anthropic`, for logs.
    pub(crate) provider: &'static str,
    client: reqwest::Client,
    headers: HeaderMap,
    key: Option<ApiKey>,
}

/// The options both builders take.
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
            Some(client) => client,
            None => match reqwest::Client::builder()
                .connect_timeout(crate::layers::timeout::DEFAULT_CONNECT)
                .read_timeout(crate::layers::timeout::DEFAULT_READ)
                .build()
            {
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

impl Transport {
    /// The key, for Debug (redacted) and for scrubbing messages.
    pub(crate) fn key(&self) -> Option<&ApiKey> {
        self.key.as_ref()
    }

    /// The names of the headers sent with every call (values are secret).
    pub(crate) fn header_names(&self) -> Vec<&str> {
        self.headers.keys().map(HeaderName::as_str).collect()
    }

    /// POSTs `request`, encoded by `wire`, to `url`; never retries.
    pub(crate) async fn send<W: Wire>(
        &self,
        wire: &W,
        url: Url,
        request: ChatRequest,
    ) -> Result<ChatResponse, ChatError> {
        let model = request.model().to_owned();
        let started = Instant::now();
        let result = self.exchange(wire, url, &model, request).await;
        let latency = started.elapsed();
        match &result {
            Ok(r) => tracing::debug!(
                provider = self.provider,
                model = &*model,
                stream = r.is_stream(),
                ?latency,
                "provider answered"
            ),
            Err(e) => tracing::debug!(
                provider = self.provider,
                model = &*model,
                kind = %e.kind(),
                status = e.status().map(|s| s.as_u16()),
                ?latency,
                "provider failed"
            ),
        }
        result.map_err(|e| error::scrub(e.with_model(model), self.key()))
    }

    async fn exchange<W: Wire>(
        &self,
        wire: &W,
        url: Url,
        model: &str,
        request: ChatRequest,
    ) -> Result<ChatResponse, ChatError> {
        let stream = request.is_stream();
        let malformed = request
            .extensions()
            .get::<MalformedChunks>()
            .cloned()
            .unwrap_or_default();
        let headers_deadline = request.extensions().get::<HeadersDeadline>().map(|h| h.0);
        let body = wire.encode(&request)?;
        let events = wire.events(&request);
        drop(request);
        let started = Instant::now();
        let accept = if stream {
            "text/event-stream"
        } else {
            "application/json"
        };
        let send = self
            .client
            .post(url)
            .headers(self.headers.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, accept)
            .body(body)
            .send();
        let response = match headers_deadline {
            None => send.await,
            Some(at) => tokio::time::timeout_at(at, send)
                .await
                .map_err(|_| ChatError::timeout(TimeoutKind::Headers, started.elapsed()))?,
        }
        .map_err(send_error)?;
        let mut response = response;
        let status = response.status();
        tracing::trace!(provider = self.provider, model, status = status.as_u16(), elapsed = ?started.elapsed(), "response head");
        if !status.is_success() {
            let headers = response.headers().clone();
            let bytes = body::error_excerpt(&mut response).await;
            return Err(error::from_status(status, &headers, &bytes, self.key()));
        }
        let is_json = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if stream && !is_json {
            let chunks =
                SseChunks::new(response, events, model, self.key.clone(), malformed.clone());
            let stream = crate::chat::streaming::commit(chunks).await?;
            let mut response = ChatResponse::stream(model, stream);
            response.extensions_mut().insert(malformed);
            return Ok(response);
        }
        let bytes = body::completion(&mut response).await?;
        let completion = self.parse_completion(wire, &bytes)?;
        if stream {
            return Err(malformed_body(
                "expected an event stream, got a JSON completion",
                &bytes,
            ));
        }
        Ok(ChatResponse::complete(model, completion))
    }

    fn parse_completion<W: Wire>(
        &self,
        wire: &W,
        bytes: &[u8],
    ) -> Result<ChatCompletion, ChatError> {
        let value: Value =
            serde_json::from_slice(bytes).map_err(|_| malformed_body("not JSON", bytes))?;
        if let Some(e) = error::from_json(&value, self.key()) {
            return Err(e);
        }
        wire.completion(value)
            .map_err(|what| malformed_body(&what, bytes))
    }
}

/// A 2xx body we cannot use: the provider failed (`Server`).
fn malformed_body(what: &str, body: &[u8]) -> ChatError {
    ChatError::new(
        ErrorKind::Server,
        format!(
            "malformed response body, {what}: {:?}",
            excerpt(body, EXCERPT_CHARS)
        ),
    )
}
