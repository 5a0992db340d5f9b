//! One item of a stream as it travels through the layers: the typed chunk,
//! and the JSON the provider sent for it while nothing has changed it.
//!
//! The gateway forwards that JSON as it came (only `model` is replaced)
//! instead of encoding the chunk again: the chunk's bytes are already what
//! the caller must receive, and re-encoding every chunk of every stream was
//! the gateway's largest cost per streamed answer. Any change to the chunk
//! goes through [`StreamEvent::chunk_mut`], which forgets the JSON, so a
//! layer that rewrites a chunk can never have its change lost.

use std::ops::Deref;

use bytes::Bytes;

use crate::chat::chunk::ChatChunk;

/// A chunk and, while it is unchanged, the provider's JSON for it.
///
/// The chunk is boxed: an event is moved through every layer's stream on
/// its way to the client, and a pointer moves for less than the chunk's
/// couple of hundred bytes (net of the allocation, 1 % of a 20-chunk
/// stream's instructions under callgrind).
#[derive(Clone, Debug)]
pub(crate) struct StreamEvent {
    chunk: Box<ChatChunk>,
    raw: Option<Bytes>,
}

impl StreamEvent {
    /// A chunk with no JSON of its own (made or changed by a layer).
    pub(crate) fn typed(chunk: ChatChunk) -> Self {
        StreamEvent {
            chunk: Box::new(chunk),
            raw: None,
        }
    }

    /// A chunk decoded from `raw`, the JSON object the provider sent.
    #[cfg_attr(not(feature = "openai"), allow(dead_code))]
    pub(crate) fn decoded(chunk: ChatChunk, raw: Bytes) -> Self {
        StreamEvent {
            chunk: Box::new(chunk),
            raw: Some(raw),
        }
    }

    /// The provider's JSON for the chunk, if the chunk is unchanged since.
    pub(crate) fn raw(&self) -> Option<&Bytes> {
        self.raw.as_ref()
    }

    /// The chunk, to change it: the provider's JSON no longer says the same.
    #[cfg_attr(not(any(feature = "openai", feature = "server")), allow(dead_code))]
    pub(crate) fn chunk_mut(&mut self) -> &mut ChatChunk {
        self.raw = None;
        &mut self.chunk
    }

    /// The typed chunk.
    pub(crate) fn into_chunk(self) -> ChatChunk {
        *self.chunk
    }
}

impl Deref for StreamEvent {
    type Target = ChatChunk;

    fn deref(&self) -> &ChatChunk {
        &self.chunk
    }
}

impl From<ChatChunk> for StreamEvent {
    fn from(chunk: ChatChunk) -> Self {
        StreamEvent::typed(chunk)
    }
}
