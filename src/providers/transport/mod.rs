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
mod options;
#[cfg(all(test, feature = "openai", feature = "anthropic"))]
mod proptests;
pub(crate) mod sse;
#[cfg(feature = "otel")]
mod trace_context;
pub(crate) mod upstream;

use http::header::{HeaderName, HeaderValue, ACCEPT, CONTENT_TYPE};
use http::{HeaderMap, Uri};
use serde_json::Value;
use tokio::time::Instant;

pub(crate) use self::options::{
    checked, join, parse_base_url, request_uri, shared_setters, Options,
};

use self::error::EXCERPT_CHARS;
use self::sse::{Decode, SseChunks};
use crate::chat::streaming::HeadersDeadline;
use crate::chat::{
    ChatCompletion, ChatError, ChatRequest, ChatResponse, ErrorKind, MalformedChunks, TimeoutKind,
};
use crate::providers::http_error::excerpt;
use crate::secret::ApiKey;

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

    /// A 2xx JSON body read straight into the completion it is in this
    /// wire's own format, so the body itself can be forwarded: `None` when
    /// the wire translates (the default), or when anything about the body
    /// is not plainly a good completion, which then goes the general way
    /// ([`completion`](Self::completion)) for its exact verdict.
    fn completion_as_sent(&self, _body: &[u8]) -> Option<ChatCompletion> {
        None
    }

    /// A fresh reader for the stream answering `request`.
    fn events(&self, request: &ChatRequest) -> Self::Events;
}

/// The HTTP side of a client: the HTTP client and the headers of every call.
#[derive(Clone)]
pub(crate) struct Transport {
    /// `openai`, `azure` or `anthropic`, for logs.
    pub(crate) provider: &'static str,
    client: upstream::Client,
    headers: HeaderMap,
    key: Option<ApiKey>,
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

    /// POSTs `request`, encoded by `wire`, to `uri`; never retries.
    pub(crate) async fn send<W: Wire>(
        &self,
        wire: &W,
        uri: Uri,
        request: ChatRequest,
    ) -> Result<ChatResponse, ChatError> {
        let model = request.model().to_owned();
        let started = Instant::now();
        let result = self.exchange(wire, uri, &model, request).await;
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
        uri: Uri,
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
        let mut headers = self.headers.clone();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(ACCEPT, HeaderValue::from_static(accept));
        #[cfg(feature = "otel")]
        headers.extend(trace_context::trace_headers());
        let send = self.client.post(uri, headers, body);
        let mut response = match headers_deadline {
            None => send.await,
            Some(at) => tokio::time::timeout_at(at, send)
                .await
                .map_err(|_| ChatError::timeout(TimeoutKind::Headers, started.elapsed()))?,
        }?;
        let status = response.status;
        tracing::trace!(provider = self.provider, model, status = status.as_u16(), elapsed = ?started.elapsed(), "response head");
        if !status.is_success() {
            let bytes = body::error_excerpt(&mut response).await;
            return Err(error::from_status(
                status,
                &response.headers,
                &bytes,
                self.key(),
            ));
        }
        let is_json = response
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if stream && !is_json {
            let chunks = SseChunks::new(
                response.body,
                events,
                model,
                self.key.clone(),
                malformed.clone(),
            );
            let stream = crate::chat::streaming::commit_events(chunks).await?;
            let mut response = ChatResponse::stream(model, stream);
            response.extensions_mut().insert(malformed);
            return Ok(response);
        }
        let bytes = body::completion(&mut response).await?;
        let as_sent = wire.completion_as_sent(&bytes);
        let forwardable = as_sent.is_some();
        let completion = match as_sent {
            Some(completion) => completion,
            None => self.parse_completion(wire, &bytes)?,
        };
        if stream {
            return Err(malformed_body(
                "expected an event stream, got a JSON completion",
                &bytes,
            ));
        }
        Ok(match forwardable {
            true => ChatResponse::complete_raw(model, completion, bytes.into()),
            false => ChatResponse::complete(model, completion),
        })
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
