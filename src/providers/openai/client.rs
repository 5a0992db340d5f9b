//! The OpenAI-compatible client.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::AUTHORIZATION;
use http::Uri;
use reqwest::Url;
use tower_service::Service;

use super::wire::OpenAiWire;
use crate::chat::{ChatError, ChatFuture, ChatRequest, ChatResponse, ConfigError};
use crate::providers::transport::{
    checked, join, parse_base_url, request_uri, shared_setters, Options, Transport,
};
use crate::secret::ApiKey;

/// The base URL used when none is set.
pub const OPENAI_BASE_URL: &str = "https://api.openai.com/v1";

/// A client of any OpenAI-compatible chat-completions endpoint: OpenAI,
/// OpenRouter, vLLM, Ollama, Groq, Together ...
///
/// It POSTs the request's JSON to `{base_url}/chat/completions` with the
/// model name it receives (the [`Providers`](crate::Providers) router has
/// stripped the provider prefix), and maps every failure to a typed
/// [`ChatError`]. It never retries: that is the layers' job.
///
/// Cloning is cheap (one `Arc`); clones share the connection pool.
#[derive(Clone)]
pub struct OpenAi {
    inner: Arc<Inner>,
}

struct Inner {
    url: Url,
    /// `url` as sent.
    uri: Uri,
    transport: Transport,
}

impl OpenAi {
    /// Starts configuring a client.
    pub fn builder() -> OpenAiBuilder {
        OpenAiBuilder::default()
    }

    /// The URL requests are posted to.
    pub fn url(&self) -> &Url {
        &self.inner.url
    }
}

impl fmt::Debug for OpenAi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAi")
            .field("url", &self.inner.url.as_str())
            .field("key", &self.inner.transport.key())
            .field("headers", &self.inner.transport.header_names())
            .finish()
    }
}

impl Service<ChatRequest> for OpenAi {
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
            inner.transport.send(&OpenAiWire, uri, request).await
        })
    }
}

/// Configures an [`OpenAi`] client. Every setting is optional; problems are
/// reported together by [`build`](Self::build).
#[derive(Default)]
pub struct OpenAiBuilder {
    base_url: Option<String>,
    options: Options,
}

impl OpenAiBuilder {
    /// The API root, e.g. `https://openrouter.ai/api/v1` or
    /// `http://localhost:11434/v1`. Default: [`OPENAI_BASE_URL`].
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    shared_setters! {
        /// The key, sent as `Authorization: Bearer <key>`. Default: none (local
        /// servers often need none).
        api_key;
        /// A header sent with every call (`OpenAI-Organization`,
        /// `HTTP-Referer` ...). Values are treated as secrets: never logged or
        /// printed. A header of the same name as the key's replaces it.
        header;
    }

    /// The client, or every problem found (a base URL that is not an
    /// http(s) URL, an empty key, an invalid header).
    pub fn build(self) -> Result<OpenAi, ConfigError> {
        let mut errors = ConfigError::default();
        let raw = self.base_url.as_deref().unwrap_or(OPENAI_BASE_URL);
        let url = parse_base_url("base_url", raw, &mut errors);
        let transport = self.options.build(
            "openai",
            AUTHORIZATION,
            ApiKey::bearer_header_value,
            &mut errors,
        );
        let (base, transport) = checked(errors, url, transport)?;
        let url = join(&base, &["chat", "completions"]);
        let uri = request_uri(&url).map_err(|e| ConfigError::new("base_url", e.message()))?;
        Ok(OpenAi {
            inner: Arc::new(Inner {
                url,
                uri,
                transport,
            }),
        })
    }
}

impl fmt::Debug for OpenAiBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiBuilder")
            .field("base_url", &self.base_url)
            .field("options", &self.options)
            .finish()
    }
}
