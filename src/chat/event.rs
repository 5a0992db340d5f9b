//! One item of a stream as it travels through the layers: the provider's
//! JSON for a chunk and what the checks read of it, or a typed chunk.
//!
//! The gateway forwards that JSON as it came (only `model` is replaced)
//! instead of encoding the chunk again: the chunk's bytes are already what
//! the caller must receive, and re-encoding every chunk of every stream was
//! the gateway's largest cost per streamed answer. Nor is the typed chunk
//! built while nothing asks for it: the checks of a stream (content, finish
//! reasons, usage, indexes) read [`Facts`], read from the JSON without a
//! copy ([`read`](crate::chat::facts::read)), and the chunk is read
//! only for a layer that changes it or a caller that takes it. Any change
//! goes through [`StreamEvent::chunk_mut`], which forgets the JSON, so a
//! layer that rewrites a chunk can never have its change lost.

use bytes::Bytes;

use crate::chat::chunk::{ChatChunk, Finishes};
use crate::chat::completion::Usage;
use crate::chat::error::ChatError;
use crate::chat::facts::Facts;
use crate::chat::kind::StreamFault;

/// A chunk, as the provider's JSON (with what the checks read of it) or
/// typed.
#[derive(Clone, Debug)]
pub(crate) struct StreamEvent(Repr);

#[derive(Clone, Debug)]
enum Repr {
    /// Made or changed by a layer, or read for one. Boxed: an event is
    /// moved through every layer's stream on its way to the client.
    Typed(Box<ChatChunk>),
    /// The provider's JSON object, read only for its facts.
    Json {
        raw: Bytes,
        facts: Facts,
        /// The usage (usually on the last chunk only).
        usage: Option<Box<Usage>>,
    },
}

impl StreamEvent {
    /// A chunk with no JSON of its own (made or changed by a layer).
    pub(crate) fn typed(chunk: ChatChunk) -> Self {
        StreamEvent(Repr::Typed(Box::new(chunk)))
    }

    /// The chunk whose JSON `raw` is, with the `facts` and `usage`
    /// [`facts::read`](crate::chat::facts::read) read of it.
    #[cfg_attr(not(feature = "openai"), allow(dead_code))]
    pub(crate) fn json(raw: Bytes, facts: Facts, usage: Option<Usage>) -> Self {
        StreamEvent(Repr::Json {
            raw,
            facts,
            usage: usage.map(Box::new),
        })
    }

    /// The provider's JSON for the chunk, if the chunk is unchanged since.
    #[cfg_attr(not(feature = "server"), allow(dead_code))]
    pub(crate) fn raw(&self) -> Option<&Bytes> {
        match &self.0 {
            Repr::Json { raw, .. } => Some(raw),
            Repr::Typed(_) => None,
        }
    }

    /// Whether any choice carries content a user would see
    /// ([`ChatChunk::has_content`]).
    pub(crate) fn has_content(&self) -> bool {
        match &self.0 {
            Repr::Json { facts, .. } => facts.content,
            Repr::Typed(chunk) => chunk.has_content(),
        }
    }

    /// The bytes of text the chunk carries: content, refusals and tool-call
    /// arguments.
    pub(crate) fn text_bytes(&self) -> usize {
        match &self.0 {
            Repr::Json { facts, .. } => facts.text_bytes,
            Repr::Typed(chunk) => Facts::of(chunk).text_bytes,
        }
    }

    /// Whether the chunk has any choice.
    #[cfg_attr(not(feature = "server"), allow(dead_code))]
    pub(crate) fn has_choices(&self) -> bool {
        match &self.0 {
            Repr::Json { facts, .. } => facts.choices,
            Repr::Typed(chunk) => !chunk.choices.is_empty(),
        }
    }

    /// The chunk's token usage.
    pub(crate) fn usage(&self) -> Option<&Usage> {
        match &self.0 {
            Repr::Json { usage, .. } => usage.as_deref(),
            Repr::Typed(chunk) => chunk.usage.as_ref(),
        }
    }

    /// Notes the chunk's choices in `finishes`.
    pub(crate) fn note(&self, finishes: &mut Finishes) {
        match &self.0 {
            Repr::Json { facts, .. } => finishes.merge(facts.finishes),
            Repr::Typed(chunk) => finishes.note(chunk),
        }
    }

    /// What is wrong with the chunk's indexes, if anything
    /// ([`check_indexes`](crate::chat::facts::check_indexes)).
    #[cfg_attr(not(any(feature = "openai", feature = "anthropic")), allow(dead_code))]
    pub(crate) fn check_indexes(&self) -> Result<(), String> {
        match &self.0 {
            Repr::Json { facts, .. } => facts.bad_index.map_or(Ok(()), |bad| Err(bad.describe())),
            Repr::Typed(chunk) => crate::chat::facts::check_indexes(chunk),
        }
    }

    /// The chunk, to change it: the provider's JSON no longer says the same.
    ///
    /// Reads the chunk from the JSON first, if it is still JSON: that read
    /// cannot fail where the facts were read (the property test of
    /// `facts.rs`), but if it ever did, it is a protocol fault of the
    /// stream, not a panic.
    #[cfg_attr(not(any(feature = "openai", feature = "server")), allow(dead_code))]
    pub(crate) fn chunk_mut(&mut self) -> Result<&mut ChatChunk, Unreadable> {
        if let Repr::Json { raw, .. } = &self.0 {
            self.0 = Repr::Typed(Box::new(typed(raw)?));
        }
        match &mut self.0 {
            Repr::Typed(chunk) => Ok(chunk),
            Repr::Json { .. } => unreachable!("made typed above"),
        }
    }

    /// The typed chunk (read from the JSON if it is still JSON; see
    /// [`chunk_mut`](Self::chunk_mut)).
    pub(crate) fn into_chunk(self) -> Result<ChatChunk, Unreadable> {
        match self.0 {
            Repr::Typed(chunk) => Ok(*chunk),
            Repr::Json { raw, .. } => typed(&raw),
        }
    }

    /// The typed chunk, without taking the event (tests).
    #[cfg(test)]
    pub(crate) fn to_chunk(&self) -> ChatChunk {
        self.clone().into_chunk().expect("a chunk")
    }

    /// The size of the chunk's JSON: the provider's, or as it would be
    /// encoded.
    pub(crate) fn json_len(&self) -> usize {
        match &self.0 {
            Repr::Json { raw, .. } => raw.len(),
            Repr::Typed(chunk) => json_size(chunk),
        }
    }
}

/// Reads the chunk `raw` holds.
fn typed(raw: &Bytes) -> Result<ChatChunk, Unreadable> {
    serde_json::from_slice(raw).map_err(Unreadable)
}

/// A chunk whose facts were read but whose JSON did not read as a typed
/// chunk: never, by the property test of `facts.rs`, and a protocol fault
/// of the stream if it ever happened.
#[derive(Debug)]
pub(crate) struct Unreadable(serde_json::Error);

impl Unreadable {
    /// The stream's fault, after `chunks` content chunks.
    pub(crate) fn into_error(self, chunks: usize) -> ChatError {
        ChatError::stream_interrupted(
            StreamFault::Protocol,
            chunks,
            format!("a chunk that was checked could not be read: {}", self.0),
        )
    }
}

/// Counts the bytes written, to size a chunk without keeping its JSON.
struct Counter(usize);

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 = self.0.saturating_add(buf.len());
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn json_size(chunk: &ChatChunk) -> usize {
    let mut counter = Counter(0);
    // Writing to a counter cannot fail; a chunk that cannot be encoded
    // counts as huge.
    match serde_json::to_writer(&mut counter, chunk) {
        Ok(()) => counter.0,
        Err(_) => usize::MAX,
    }
}

impl From<ChatChunk> for StreamEvent {
    fn from(chunk: ChatChunk) -> Self {
        StreamEvent::typed(chunk)
    }
}
