//! A server-sent-event body to a stream of chunks that never ends silently
//! after a fault, whatever the provider's event format.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use futures_core::Stream;

use super::error;
use super::events::{EventParser, SseError};
use super::upstream::Body;
use crate::chat::streaming::MAX_EVENT_BYTES;
use crate::chat::StreamEvent;
use crate::chat::{ChatError, ErrorKind, Finishes, MalformedChunks, StreamFault};
use crate::secret::ApiKey;

/// What one event means.
// Chunks are nearly every item: boxing them would cost an allocation each.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Decoded {
    /// A chunk to pass on (with the provider's JSON when the format is
    /// the caller's too).
    Chunk(StreamEvent),
    /// The provider reported an error in the stream.
    Error(ChatError),
    /// The provider's end marker (`[DONE]`, `message_stop`).
    Done,
    /// An event that cannot be read, and so may have carried content: a
    /// fault of the stream.
    Malformed,
}

/// A provider's event format: one reader per stream, fed every event in order.
pub(crate) trait Decode: Send + Unpin + 'static {
    /// The end marker's name, for messages (`[DONE]`).
    const END: &'static str;

    /// Reads one event (its `event:` name, empty when absent, and its
    /// `data:`), pushing what it means onto `out`: nothing for keep-alives.
    fn decode(&mut self, event: &str, data: &str, out: &mut VecDeque<Decoded>);

    /// [`decode`](Self::decode) of an event whose `data` the reader may
    /// keep (as the chunk's forwarded JSON, without a copy).
    fn decode_owned(&mut self, event: &str, data: String, out: &mut VecDeque<Decoded>) {
        self.decode(event, &data, out);
    }
}

/// The chunks of an SSE body, read by `D`.
///
/// - The end marker ends the stream; nothing after it is read (a second
///   `[DONE]`, or content after it, never reaches the caller).
/// - An error event: before any content it is the attempt's error; after
///   content it is a `StreamInterrupted` item (protocol fault).
/// - An event that cannot be read (not JSON, not a chunk, a choice or
///   tool-call index out of range, larger than
///   [`MAX_EVENT_BYTES`], not UTF-8) may have carried content: it is
///   counted in [`MalformedChunks`] and is a fault like an error event
///   (kind `Server` before content, `StreamInterrupted` after). Only
///   comments, keep-alives and events the decoder knows to carry nothing
///   are skipped.
/// - A body that ends or breaks without the end marker after content yields
///   a `StreamInterrupted` item (cut), unless every choice already has its
///   finish reason: then the answer is complete and the stream ends
///   normally.
///
/// Chunk counts in faults are content-bearing chunks delivered.
pub(crate) struct SseChunks<D> {
    body: Body,
    parser: EventParser,
    decoder: D,
    pending: VecDeque<Decoded>,
    /// A fault of the byte stream, reported once `pending` is drained.
    broken: Option<SseError>,
    model: String,
    key: Option<ApiKey>,
    malformed: MalformedChunks,
    /// Size of the last event decoded, for messages.
    event_bytes: usize,
    delivered: usize,
    finishes: Finishes,
    done: bool,
}

impl<D: Decode> SseChunks<D> {
    pub(crate) fn new(
        body: Body,
        decoder: D,
        model: &str,
        key: Option<ApiKey>,
        malformed: MalformedChunks,
    ) -> Self {
        SseChunks {
            body,
            parser: EventParser::new(MAX_EVENT_BYTES),
            decoder,
            pending: VecDeque::new(),
            broken: None,
            model: model.to_owned(),
            key,
            malformed,
            event_bytes: 0,
            delivered: 0,
            finishes: Finishes::default(),
            done: false,
        }
    }

    /// Feeds one read of the body to the parser and the decoder.
    fn feed(&mut self, bytes: &[u8]) {
        let SseChunks {
            parser,
            decoder,
            pending,
            event_bytes,
            ..
        } = self;
        let result = parser.feed(bytes, |event| {
            *event_bytes = event.data.len();
            decoder.decode_owned(&event.event, event.data, pending);
        });
        if let Err(e) = result {
            self.broken = Some(e);
        }
    }

    /// An event that cannot be read: counted, and a fault.
    fn unreadable(&mut self, what: &str) -> ChatError {
        self.malformed.record();
        // The event's text may be user content: log its size, not the text.
        tracing::debug!(
            model = &*self.model,
            bytes = self.event_bytes,
            chunks = self.delivered,
            what,
            "malformed stream event"
        );
        let e = ChatError::new(
            ErrorKind::Server,
            format!("the provider sent a stream event that cannot be read: {what}"),
        );
        self.fault(e, StreamFault::Protocol)
    }

    /// The stream broke (`e`) or ended (`None`) before the end marker.
    fn on_break(&mut self, e: Option<ChatError>) -> Option<ChatError> {
        self.done = true;
        if self.finishes.complete() {
            // The answer was complete; only the terminator is missing.
            return None;
        }
        let e = match e {
            None => {
                if self.delivered == 0 {
                    // `commit` reports an end with no content as the attempt's error.
                    return None;
                }
                let message = format!("the body ended without {}", D::END);
                ChatError::new(ErrorKind::Connect, message)
            }
            Some(e) => e,
        };
        Some(self.fault(e, StreamFault::Cut))
    }

    /// `e` as the attempt's error before content, or as a stream fault after.
    fn fault(&mut self, e: ChatError, fault: StreamFault) -> ChatError {
        self.done = true;
        self.pending.clear();
        self.broken = None;
        let e = if self.delivered == 0 {
            e
        } else {
            let code = e.code().map(str::to_owned);
            let status = e.status();
            let mut f = ChatError::stream_interrupted(fault, self.delivered, e.message());
            if let Some(code) = code {
                f = f.with_code(code);
            }
            if let Some(status) = status {
                f = f.with_status(status);
            }
            f.with_source(e)
        };
        error::scrub(e.with_model(self.model.clone()), self.key.as_ref())
    }
}

impl<D: Decode> Stream for SseChunks<D> {
    type Item = Result<StreamEvent, ChatError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(decoded) = this.pending.pop_front() {
                let error = match decoded {
                    Decoded::Chunk(chunk) => match chunk.check_indexes() {
                        Ok(()) => {
                            if chunk.has_content() {
                                this.delivered += 1;
                            }
                            chunk.note(&mut this.finishes);
                            return Poll::Ready(Some(Ok(chunk)));
                        }
                        Err(why) => this.unreadable(&why),
                    },
                    Decoded::Error(e) => this.fault(e, StreamFault::Protocol),
                    Decoded::Done => {
                        this.pending.clear();
                        this.broken = None;
                        this.done = true;
                        continue;
                    }
                    Decoded::Malformed => this.unreadable("not a valid event"),
                };
                return Poll::Ready(Some(Err(error)));
            }
            if this.done {
                return Poll::Ready(None);
            }
            if let Some(broken) = this.broken.take() {
                let what = match broken {
                    SseError::TooLarge(limit) => format!("an event larger than {limit} bytes"),
                    SseError::Utf8 => "a line that is not valid UTF-8".to_owned(),
                };
                return Poll::Ready(Some(Err(this.unreadable(&what))));
            }
            match ready!(this.body.as_mut().poll_next(cx)) {
                Some(Ok(bytes)) => this.feed(&bytes),
                Some(Err(e)) => return Poll::Ready(this.on_break(Some(e)).map(Err)),
                None => return Poll::Ready(this.on_break(None).map(Err)),
            }
        }
    }
}
