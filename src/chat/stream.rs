//! A streamed answer: the chunks, and the error item that ends a stream
//! whose delivery failed.

use std::fmt;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use futures_core::Stream;

use crate::chat::chunk::ChatChunk;
use crate::chat::completion::ChatCompletion;
use crate::chat::error::ChatError;
use crate::chat::event::StreamEvent;
use crate::chat::facts::check_indexes;
use crate::chat::kind::StreamFault;

type BoxEventStream = Pin<Box<dyn Stream<Item = Result<StreamEvent, ChatError>> + Send>>;

/// A stream of chunks. After the first content chunk, a fault is never a
/// silent end: the stream yields an error item instead.
pub struct ChatStream {
    // Events, not bare chunks: a chunk that no layer changed keeps the
    // provider's JSON, which the gateway forwards instead of encoding again.
    inner: BoxEventStream,
    /// Content chunks yielded as typed chunks (for the fault of a chunk
    /// that does not read as one).
    delivered: usize,
}

impl ChatStream {
    /// Wraps any stream of chunks.
    pub fn new<S>(stream: S) -> Self
    where
        S: Stream<Item = Result<ChatChunk, ChatError>> + Send + 'static,
    {
        Self::from_events(futures_util::StreamExt::map(stream, |item| {
            item.map(StreamEvent::typed)
        }))
    }

    /// Wraps a stream of events (chunks that may still hold the provider's
    /// JSON). Layers that only watch a stream pass its events on with this,
    /// so the JSON survives them.
    pub(crate) fn from_events<S>(stream: S) -> Self
    where
        S: Stream<Item = Result<StreamEvent, ChatError>> + Send + 'static,
    {
        ChatStream {
            inner: Box::pin(stream),
            delivered: 0,
        }
    }

    /// The next event, keeping the provider's JSON when it has it.
    pub(crate) fn poll_event(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<StreamEvent, ChatError>>> {
        self.inner.as_mut().poll_next(cx)
    }

    /// The next event (see [`poll_event`](Self::poll_event)).
    #[cfg_attr(not(feature = "server"), allow(dead_code))]
    pub(crate) async fn next_event(&mut self) -> Option<Result<StreamEvent, ChatError>> {
        std::future::poll_fn(|cx| self.poll_event(cx)).await
    }

    /// The stream's events (see [`poll_event`](Self::poll_event)).
    #[cfg_attr(not(feature = "server"), allow(dead_code))]
    pub(crate) fn into_events(
        mut self,
    ) -> impl Stream<Item = Result<StreamEvent, ChatError>> + Send + 'static {
        futures_util::stream::poll_fn(move |cx| self.poll_event(cx))
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
    /// [`StreamInterrupted`](crate::chat::ErrorKind::StreamInterrupted) error
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
        let item = ready!(self.inner.as_mut().poll_next(cx));
        Poll::Ready(item.map(|item| {
            let chunk = item?
                .into_chunk()
                .map_err(|e| e.into_error(self.delivered))?;
            self.delivered += usize::from(chunk.has_content());
            Ok(chunk)
        }))
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
