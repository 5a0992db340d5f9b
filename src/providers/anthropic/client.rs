//! The Anthropic Messages API client.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::HeaderName;
use http::Uri;
use reqwest::Url;
use serde_json::Value;
use tower_service::Service;

use super::stream::AnthropicEvents;
use super::{request, response};
use crate::chat::{
    ChatCompletion, ChatError, ChatFuture, ChatRequest, ChatResponse, ConfigError, ErrorKind,
};
use crate::providers::transport::{
    checked, join, parse_base_url, request_uri, shared_setters, Options, Transport, Wire,
};
use crate::secret::ApiKey;

/// The base URL used when none is set; calls go to `{base}/v1/messages`.
pub const ANTHROPIC_BASE_URL: &str = "https://api.anthropic.com";

/// The `anthropic-version` header sent when none is set.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// The `max_tokens` sent when the caller gives none. Anthropic requires a
/// value; every Claude model accepts 4096 (the Claude 3 models' maximum
/// output), while newer ones would take more.
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

/// A client of the Anthropic Messages API that speaks OpenAI's shape to the
/// caller.
///
/// It receives an OpenAI chat-completions [`ChatRequest`] with the model
/// name the [`Providers`](crate::Providers) router stripped the prefix from,
/// POSTs the translated request to `{base_url}/v1/messages` with the key in
/// `x-api-key` and the `anthropic-version` header, and answers a
/// `chat.completion` (or a stream of `chat.completion.chunk`s). See the
/// [module docs](super) for the translation. It never retries.
///
/// Cloning is cheap (one `Arc`); clones share the connection pool.
#[derive(Clone)]
pub struct Anthropic {
    inner: Arc<Inner>,
}

struct Inner {
    url: Url,
    /// `url` as sent.
    uri: Uri,
    version: String,
    wire: AnthropicWire,
    transport: Transport,
}

impl Anthropic {
    /// Starts configuring a client.
    pub fn builder() -> AnthropicBuilder {
        AnthropicBuilder::default()
    }

    /// The URL requests are posted to.
    pub fn url(&self) -> &Url {
        &self.inner.url
    }

    /// The `anthropic-version` sent.
    pub fn version(&self) -> &str {
        &self.inner.version
    }

    /// The `max_tokens` sent when the caller gives none.
    pub fn default_max_tokens(&self) -> u32 {
        self.inner.wire.default_max_tokens
    }
}

impl fmt::Debug for Anthropic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Anthropic")
            .field("url", &self.inner.url.as_str())
            .field("version", &self.inner.version)
            .field("default_max_tokens", &self.inner.wire.default_max_tokens)
            .field("key", &self.inner.transport.key())
            .field("headers", &self.inner.transport.header_names())
            .finish()
    }
}

impl Service<ChatRequest> for Anthropic {
    type Response = ChatResponse;
    type Error = ChatError;
    type Future = ChatFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), ChatError>> {
        // The HTTP client queues and pools connections itself.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: ChatRequest) -> ChatFuture {
        let inner = self.inner.clone();
        ChatFuture::new(async move {
            let uri = inner.uri.clone();
            inner.transport.send(&inner.wire, uri, request).await
        })
    }
}

/// The Messages API format.
#[derive(Clone, Copy, Debug)]
struct AnthropicWire {
    default_max_tokens: u32,
}

impl Wire for AnthropicWire {
    type Events = AnthropicEvents;

    fn encode(&self, request: &ChatRequest) -> Result<Vec<u8>, ChatError> {
        let body = request::encode(request, self.default_max_tokens)?;
        serde_json::to_vec(&body).map_err(|e| {
            ChatError::new(
                ErrorKind::BadRequest,
                format!("cannot encode the request: {e}"),
            )
        })
    }

    fn completion(&self, body: Value) -> Result<ChatCompletion, String> {
        response::completion(body)
    }

    fn events(&self, _request: &ChatRequest) -> AnthropicEvents {
        AnthropicEvents::new()
    }
}

/// Configures an [`Anthropic`] client. Every setting is optional; problems
/// are reported together by [`build`](Self::build).
#[derive(Default)]
pub struct AnthropicBuilder {
    base_url: Option<String>,
    version: Option<String>,
    default_max_tokens: Option<u32>,
    options: Options,
}

impl AnthropicBuilder {
    /// The API root, without `/v1` (e.g. a proxy's
    /// `https://llm-proxy.internal/anthropic`). Default: [`ANTHROPIC_BASE_URL`].
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// The `anthropic-version` header. Default: [`ANTHROPIC_VERSION`].
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into());
        self
    }

    /// The `max_tokens` sent when the caller sets neither
    /// `max_completion_tokens` nor `max_tokens`. Default: [`DEFAULT_MAX_TOKENS`].
    pub fn default_max_tokens(mut self, max_tokens: u32) -> Self {
        self.default_max_tokens = Some(max_tokens);
        self
    }

    shared_setters! {
        /// The key, sent as `x-api-key`. Default: none (a proxy in front may
        /// authenticate otherwise; Anthropic itself answers 401).
        api_key;
        /// A header sent with every call (`anthropic-beta` ...). Values are
        /// treated as secrets: never logged or printed. A header named like one
        /// the client sets (`x-api-key`, `anthropic-version`) replaces it.
        header;
    }

    /// The client, or every problem found (a base URL that is not an
    /// http(s) URL, an empty key, an invalid version or header, a zero
    /// `default_max_tokens`).
    pub fn build(self) -> Result<Anthropic, ConfigError> {
        let mut errors = ConfigError::default();
        let raw = self.base_url.as_deref().unwrap_or(ANTHROPIC_BASE_URL);
        let url = parse_base_url("base_url", raw, &mut errors);
        let version = self.version.unwrap_or_else(|| ANTHROPIC_VERSION.to_owned());
        if version.trim().is_empty() || !version.chars().all(|c| c.is_ascii_graphic()) {
            errors.push(
                "version",
                format!("{version:?} is not an anthropic-version"),
            );
        }
        let default_max_tokens = self.default_max_tokens.unwrap_or(DEFAULT_MAX_TOKENS);
        if default_max_tokens == 0 {
            errors.push("default_max_tokens", "must be at least 1");
        }
        let mut options = self.options;
        // First, so that a caller's header of the same name wins.
        options
            .headers
            .insert(0, ("anthropic-version".to_owned(), version.clone()));
        let transport = options.build(
            "anthropic",
            HeaderName::from_static("x-api-key"),
            ApiKey::header_value,
            &mut errors,
        );
        let (base, transport) = checked(errors, url, transport)?;
        let url = join(&base, &["v1", "messages"]);
        let uri = request_uri(&url).map_err(|e| ConfigError::new("base_url", e.message()))?;
        Ok(Anthropic {
            inner: Arc::new(Inner {
                url,
                uri,
                version,
                wire: AnthropicWire { default_max_tokens },
                transport,
            }),
        })
    }
}

impl fmt::Debug for AnthropicBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnthropicBuilder")
            .field("base_url", &self.base_url)
            .field("version", &self.version)
            .field("default_max_tokens", &self.default_max_tokens)
            .field("options", &self.options)
            .finish()
    }
}
