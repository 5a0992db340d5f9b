//! What a call returns: a complete completion or a stream of chunks.

use std::fmt;

use bytes::Bytes;
use http::Extensions;

use crate::chat::attempt::{Attempt, Attempts};
use crate::chat::completion::{ChatCompletion, Usage};
use crate::chat::stream::ChatStream;

/// The answer to a [`ChatRequest`](crate::chat::ChatRequest).
///
/// It names the model that actually served it (after retries and fallbacks,
/// not the one the caller asked for) and carries the attempt log in its
/// [`extensions`](Self::extensions).
pub struct ChatResponse {
    model: String,
    body: ResponseBody,
    extensions: Extensions,
    /// The provider's JSON for a complete body, while nothing could have
    /// changed the completion since it was read: the gateway forwards it
    /// instead of encoding the completion again. Forgotten by every way
    /// to change or take the body.
    raw: Option<Bytes>,
}

/// A complete answer or a stream.
#[derive(Debug)]
pub enum ResponseBody {
    /// A complete `chat.completion` object.
    Complete(ChatCompletion),
    /// A stream of `chat.completion.chunk` objects.
    Stream(ChatStream),
}

impl ChatResponse {
    /// A complete response served by `model`.
    pub fn complete(model: impl Into<String>, completion: ChatCompletion) -> Self {
        ChatResponse {
            model: model.into(),
            body: ResponseBody::Complete(completion),
            extensions: Extensions::new(),
            raw: None,
        }
    }

    /// A complete response and the provider's JSON it was read from.
    #[cfg_attr(not(any(feature = "openai", feature = "anthropic")), allow(dead_code))]
    pub(crate) fn complete_raw(
        model: impl Into<String>,
        completion: ChatCompletion,
        raw: Bytes,
    ) -> Self {
        let mut response = Self::complete(model, completion);
        response.raw = Some(raw);
        response
    }

    /// A streamed response served by `model`.
    pub fn stream(model: impl Into<String>, stream: ChatStream) -> Self {
        ChatResponse {
            model: model.into(),
            body: ResponseBody::Stream(stream),
            extensions: Extensions::new(),
            raw: None,
        }
    }

    /// The model that served the answer, `provider/model`.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// Sets the serving model (routers put back the provider prefix they stripped).
    pub fn set_model(&mut self, model: impl Into<String>) {
        self.model = model.into();
    }

    /// The body.
    pub fn body(&self) -> &ResponseBody {
        &self.body
    }

    /// The body, mutably.
    pub fn body_mut(&mut self) -> &mut ResponseBody {
        self.raw = None;
        &mut self.body
    }

    /// The stream, mutably; `None` for a complete answer (which stays
    /// as it is, provider JSON and all).
    pub(crate) fn stream_mut(&mut self) -> Option<&mut ChatStream> {
        match &mut self.body {
            ResponseBody::Stream(stream) => Some(stream),
            ResponseBody::Complete(_) => None,
        }
    }

    /// Takes the provider's JSON of a complete body that nothing changed.
    #[cfg_attr(not(feature = "server"), allow(dead_code))]
    pub(crate) fn take_raw(&mut self) -> Option<Bytes> {
        self.raw.take()
    }

    /// Takes the body, dropping the rest.
    pub fn into_body(self) -> ResponseBody {
        self.body
    }

    /// The complete answer, or `None` for a stream.
    pub fn completion(&self) -> Option<&ChatCompletion> {
        match &self.body {
            ResponseBody::Complete(c) => Some(c),
            ResponseBody::Stream(_) => None,
        }
    }

    /// Takes the complete answer, or `None` for a stream.
    pub fn into_completion(self) -> Option<ChatCompletion> {
        match self.body {
            ResponseBody::Complete(c) => Some(c),
            ResponseBody::Stream(_) => None,
        }
    }

    /// Takes the stream, or `None` for a complete answer.
    pub fn into_stream(self) -> Option<ChatStream> {
        match self.body {
            ResponseBody::Stream(s) => Some(s),
            ResponseBody::Complete(_) => None,
        }
    }

    /// Whether the body is a stream.
    pub fn is_stream(&self) -> bool {
        matches!(self.body, ResponseBody::Stream(_))
    }

    /// Token usage of a complete answer (a stream reports it in its last chunk).
    pub fn usage(&self) -> Option<&Usage> {
        self.completion().and_then(|c| c.usage.as_ref())
    }

    /// The text of the first choice of a complete answer.
    pub fn text(&self) -> Option<String> {
        self.completion()
            .and_then(|c| c.choices.first())
            .map(|c| c.message.text())
    }

    /// Every attempt made to produce this answer, in order; the last one served it.
    pub fn attempts(&self) -> &[Attempt] {
        self.extensions
            .get::<Attempts>()
            .map(|a| &a.0[..])
            .unwrap_or(&[])
    }

    /// Replaces the attempt log.
    pub fn set_attempts(&mut self, attempts: Vec<Attempt>) {
        self.extensions.insert(Attempts(attempts));
    }

    /// Per-response metadata.
    pub fn extensions(&self) -> &Extensions {
        &self.extensions
    }

    /// Mutable per-response metadata.
    pub fn extensions_mut(&mut self) -> &mut Extensions {
        &mut self.extensions
    }
}

impl fmt::Debug for ChatResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChatResponse")
            .field("model", &self.model)
            .field("stream", &self.is_stream())
            .field("attempts", &self.attempts().len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_providers_json_is_forgotten_by_every_way_to_change_the_body() {
        let raw = || Bytes::from_static(b"{}");
        let response = || ChatResponse::complete_raw("m", ChatCompletion::default(), raw());

        let mut kept = response();
        let _ = kept.completion();
        let _ = kept.stream_mut();
        kept.set_model("other");
        assert_eq!(kept.take_raw(), Some(raw()));

        let mut changed = response();
        let _ = changed.body_mut();
        assert_eq!(changed.take_raw(), None);
    }
}
