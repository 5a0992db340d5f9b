//! The Azure OpenAI client.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::HeaderName;
use reqwest::Url;
use tower_service::Service;

use super::wire::OpenAiWire;
use crate::chat::{ChatError, ChatFuture, ChatRequest, ChatResponse, ConfigError, ErrorKind};
use crate::providers::transport::{
    checked, join, parse_base_url, request_uri, shared_setters, Options, Transport,
};
use crate::secret::ApiKey;

/// The `api-version` used when none is set: the latest generally available
/// version of the Azure OpenAI data-plane API when this crate was written.
pub const AZURE_API_VERSION: &str = "2024-10-21";

/// A client of one Azure OpenAI resource.
///
/// The model name it receives is the deployment: a request for
/// `azure/gpt-4o` (routed by [`Providers`](crate::Providers)) is POSTed to
/// `{endpoint}/openai/deployments/gpt-4o/chat/completions?api-version=...`
/// with the key in the `api-key` header. Failures map to typed errors as for
/// [`OpenAi`](super::OpenAi), including Azure's content-filter codes. It
/// never retries.
///
/// Cloning is cheap (one `Arc`); clones share the connection pool.
#[derive(Clone)]
pub struct Azure {
    inner: Arc<Inner>,
}

struct Inner {
    endpoint: Url,
    api_version: String,
    transport: Transport,
}

impl Azure {
    /// Starts configuring a client.
    pub fn builder() -> AzureBuilder {
        AzureBuilder::default()
    }

    /// The URL a call to `deployment` is posted to.
    pub fn url(&self, deployment: &str) -> Url {
        let mut url = join(
            &self.inner.endpoint,
            &["openai", "deployments", deployment, "chat", "completions"],
        );
        url.query_pairs_mut()
            .append_pair("api-version", &self.inner.api_version);
        url
    }

    /// The `api-version` sent.
    pub fn api_version(&self) -> &str {
        &self.inner.api_version
    }
}

impl fmt::Debug for Azure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Azure")
            .field("endpoint", &self.inner.endpoint.as_str())
            .field("api_version", &self.inner.api_version)
            .field("key", &self.inner.transport.key())
            .field("headers", &self.inner.transport.header_names())
            .finish()
    }
}

impl Service<ChatRequest> for Azure {
    type Response = ChatResponse;
    type Error = ChatError;
    type Future = ChatFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), ChatError>> {
        // The HTTP client queues and pools connections itself.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: ChatRequest) -> ChatFuture {
        let this = self.clone();
        ChatFuture::new(async move {
            if request.model().trim().is_empty() {
                return Err(ChatError::new(
                    ErrorKind::BadRequest,
                    "an Azure call needs a deployment name as its model",
                ));
            }
            let uri = request_uri(&this.url(request.model()))?;
            this.inner.transport.send(&OpenAiWire, uri, request).await
        })
    }
}

/// Configures an [`Azure`] client; [`endpoint`](Self::endpoint) is required.
#[derive(Default)]
pub struct AzureBuilder {
    endpoint: Option<String>,
    api_version: Option<String>,
    options: Options,
}

impl AzureBuilder {
    /// The resource's endpoint, e.g. `https://my-resource.openai.azure.com`.
    pub fn endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoint = Some(url.into());
        self
    }

    /// The `api-version` query parameter. Default: [`AZURE_API_VERSION`].
    pub fn api_version(mut self, version: impl Into<String>) -> Self {
        self.api_version = Some(version.into());
        self
    }

    shared_setters! {
        /// The key, sent in the `api-key` header. (For Entra ID tokens, set an
        /// `authorization` [`header`](Self::header) instead.)
        api_key;
        /// A header sent with every call. Values are treated as secrets.
        header;
    }

    /// The client, or every problem found.
    pub fn build(self) -> Result<Azure, ConfigError> {
        let mut errors = ConfigError::default();
        let endpoint = match self.endpoint.as_deref() {
            Some(raw) => parse_base_url("endpoint", raw, &mut errors),
            None => {
                errors.push("endpoint", "the Azure endpoint URL is required");
                None
            }
        };
        let api_version = self
            .api_version
            .unwrap_or_else(|| AZURE_API_VERSION.to_owned());
        if api_version.trim().is_empty() || api_version.contains(char::is_whitespace) {
            errors.push(
                "api_version",
                format!("{api_version:?} is not an api-version"),
            );
        }
        let transport = self.options.build(
            "azure",
            HeaderName::from_static("api-key"),
            ApiKey::header_value,
            &mut errors,
        );
        let (endpoint, transport) = checked(errors, endpoint, transport)?;
        Ok(Azure {
            inner: Arc::new(Inner {
                endpoint,
                api_version,
                transport,
            }),
        })
    }
}

impl fmt::Debug for AzureBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzureBuilder")
            .field("endpoint", &self.endpoint)
            .field("api_version", &self.api_version)
            .field("options", &self.options)
            .finish()
    }
}
