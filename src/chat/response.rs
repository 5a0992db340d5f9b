//! What a call returns: a complete completion or a stream of chunks.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;
use http::Extensions;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::chat::attempt::{Attempt, Attempts};
use crate::chat::error::{ChatError, StreamFault};
use crate::chat::request::{Message, Role};
use crate::chat::streaming::check_indexes;

/// The answer to a [`ChatRequest`](crate::ChatRequest).
///
/// It names the model that actually served it (after retries and fallbacks,
/// not the one the caller asked for) and carries the attempt log in its
/// [`extensions`](Self::extensions).
pub struct ChatResponse {
    model: String,
    body: ResponseBody,
    extensions: Extensions,
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
        }
    }

    /// A streamed response served by `model`.
    pub fn stream(model: impl Into<String>, stream: ChatStream) -> Self {
        ChatResponse {
            model: model.into(),
            body: ResponseBody::Stream(stream),
            extensions: Extensions::new(),
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
        &mut self.body
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

/// A `chat.completion` object.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatCompletion {
    /// The provider's id for the completion.
    #[serde(default)]
    pub id: String,
    /// `chat.completion`.
    #[serde(default = "completion_object")]
    pub object: String,
    /// Unix seconds.
    #[serde(default)]
    pub created: u64,
    /// The model as the provider named it.
    #[serde(default)]
    pub model: String,
    /// The answers.
    #[serde(default)]
    pub choices: Vec<Choice>,
    /// Token usage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// Any other field (`system_fingerprint`, `service_tier` ...), kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn completion_object() -> String {
    "chat.completion".to_owned()
}

fn chunk_object() -> String {
    "chat.completion.chunk".to_owned()
}

/// One answer of a completion.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    /// Position among the choices.
    #[serde(default)]
    pub index: u32,
    /// The assistant's message.
    pub message: Message,
    /// `stop`, `length`, `tool_calls`, `content_filter` ...
    #[serde(default)]
    pub finish_reason: Option<String>,
    /// Any other field (`logprobs` ...), kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Token counts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Tokens in the prompt.
    #[serde(default)]
    pub prompt_tokens: u64,
    /// Tokens in the answer.
    #[serde(default)]
    pub completion_tokens: u64,
    /// Their sum.
    #[serde(default)]
    pub total_tokens: u64,
    /// Details (`prompt_tokens_details` ...), kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A `chat.completion.chunk` object of a stream.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatChunk {
    /// The provider's id for the completion.
    #[serde(default)]
    pub id: String,
    /// `chat.completion.chunk`.
    #[serde(default = "chunk_object")]
    pub object: String,
    /// Unix seconds.
    #[serde(default)]
    pub created: u64,
    /// The model as the provider named it.
    #[serde(default)]
    pub model: String,
    /// The deltas.
    #[serde(default)]
    pub choices: Vec<ChunkChoice>,
    /// Token usage (the last chunk, when usage was asked for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// Any other field, kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ChatChunk {
    /// Whether any choice carries content a user would see: text, a tool-call
    /// delta or a refusal. Role-only and empty chunks do not.
    pub fn has_content(&self) -> bool {
        self.choices.iter().any(|c| c.delta.has_content())
    }

    /// The text content of all choices' deltas, concatenated.
    pub fn text(&self) -> String {
        self.choices
            .iter()
            .filter_map(|c| c.delta.content.as_deref())
            .collect()
    }
}

/// One choice's delta within a chunk.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ChunkChoice {
    /// Which choice this delta extends.
    #[serde(default)]
    pub index: u32,
    /// What is new.
    #[serde(default)]
    pub delta: Delta,
    /// Set on the choice's last chunk.
    #[serde(default)]
    pub finish_reason: Option<String>,
    /// Any other field, kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The new part of a streamed message.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Delta {
    /// Set on the first chunk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// New text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// New tool-call fragments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCallDelta>>,
    /// New refusal text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
    /// Any other field, kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Delta {
    /// Whether the delta carries text, a tool-call fragment or a refusal.
    pub fn has_content(&self) -> bool {
        self.content.as_deref().is_some_and(|c| !c.is_empty())
            || self.tool_calls.as_ref().is_some_and(|t| !t.is_empty())
            || self.refusal.as_deref().is_some_and(|r| !r.is_empty())
    }
}

/// A fragment of a tool call in a stream.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ToolCallDelta {
    /// Which tool call of the message this extends.
    #[serde(default)]
    pub index: u32,
    /// Set on the call's first fragment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `function`, on the first fragment.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Name (first fragment) and a piece of the arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<FunctionCallDelta>,
}

/// A fragment of a function call.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FunctionCallDelta {
    /// The function's name, on the first fragment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A piece of the JSON arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<String>,
}

type BoxChunkStream = Pin<Box<dyn Stream<Item = Result<ChatChunk, ChatError>> + Send>>;

/// A stream of chunks. After the first content chunk, a fault is never a
/// silent end: the stream yields an error item instead.
pub struct ChatStream {
    inner: BoxChunkStream,
}

impl ChatStream {
    /// Wraps any stream of chunks.
    pub fn new<S>(stream: S) -> Self
    where
        S: Stream<Item = Result<ChatChunk, ChatError>> + Send + 'static,
    {
        ChatStream {
            inner: Box::pin(stream),
        }
    }

    /// The next chunk, or `None` once the stream has ended: reads the stream
    /// without depending on `futures` for its `StreamExt` trait (a
    /// `ChatStream` is a `futures_core::Stream`, so with `StreamExt` in
    /// scope `.next()` and every combinator work too). After the first
    /// content chunk a fault is an `Err` item (`StreamInterrupted`), never a
    /// silent `None`.
    ///
    /// ```
    /// use llm_fallback::mock::{MockProvider, MockReply};
    /// use llm_fallback::{ChatRequest, Message};
    /// use tower::ServiceExt;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), llm_fallback::ChatError> {
    /// let provider = MockProvider::new();
    /// provider.always("gpt-4o-mini", MockReply::text("Paris is the capital"));
    /// let request = ChatRequest::new("gpt-4o-mini", [Message::user("Capital of France?")])
    ///     .with_stream(true);
    /// let mut stream = provider.oneshot(request).await?.into_stream().expect("asked for a stream");
    /// let mut answer = String::new();
    /// while let Some(chunk) = stream.next_chunk().await {
    ///     answer.push_str(&chunk?.text());
    /// }
    /// assert_eq!(answer, "Paris is the capital");
    /// # Ok(()) }
    /// ```
    pub async fn next_chunk(&mut self) -> Option<Result<ChatChunk, ChatError>> {
        futures_util::StreamExt::next(self).await
    }

    /// A stream that yields the given items, then ends.
    pub fn from_items(items: Vec<Result<ChatChunk, ChatError>>) -> Self {
        Self::new(futures_util::stream::iter(items))
    }

    /// Reads the whole stream and assembles the answer it spells: text and
    /// tool calls of every choice, finish reasons, usage. Fails with the first
    /// error item.
    ///
    /// Choice indexes must be below
    /// [`MAX_CHOICES`](crate::chat::streaming::MAX_CHOICES) and tool-call indexes
    /// below [`MAX_TOOL_CALLS`](crate::chat::streaming::MAX_TOOL_CALLS) (one entry is allocated per index): a chunk
    /// beyond them fails the collection with a
    /// [`StreamInterrupted`](crate::ErrorKind::StreamInterrupted) error
    /// ([`StreamFault::Protocol`]). Deltas are appended in place, so
    /// collecting is linear in the answer's length.
    pub async fn collect_completion(mut self) -> Result<ChatCompletion, ChatError> {
        let mut out = ChatCompletion::default();
        let mut chunks = 0usize;
        while let Some(item) = self.next_chunk().await {
            let chunk = item?;
            if let Err(why) = check_indexes(&chunk) {
                return Err(ChatError::stream_interrupted(
                    StreamFault::Protocol,
                    chunks,
                    why,
                ));
            }
            chunks += usize::from(chunk.has_content());
            crate::chat::collect::merge_chunk(&mut out, chunk);
        }
        Ok(out)
    }
}

impl Stream for ChatStream {
    type Item = Result<ChatChunk, ChatError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl fmt::Debug for ChatStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChatStream").finish_non_exhaustive()
    }
}
