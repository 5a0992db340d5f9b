//! A server-sent-event body to a stream of chunks that never ends silently
//! after a fault, whatever the provider's event format.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use eventsource_stream::{EventStreamError, Eventsource};
use futures_core::Stream;

use super::error;
use crate::error::{ChatError, ErrorKind, StreamFault};
use crate::http_error::excerpt;
use crate::malformed::MalformedChunks;
use crate::response::ChatChunk;
use crate::secret::ApiKey;

type Events = Pin<
    Box<
        dyn Stream<Item = Result<eventsource_stream::Event, EventStreamError<reqwest::Error>>>
            + Send,
    >,
>;

/// What one event means.
#[derive(Debug)]
pub(crate) enum Decoded {
    /// A chunk to pass on.
    Chunk(ChatChunk),
    /// The provider reported an error in the stream.
    Error(ChatError),
    /// The provider's end marker (`[DONE]`, `message_stop`).
    Done,
    /// Not a valid event: skipped and counted.
    Malformed,
}

/// A provider's event format: one reader per stream, fed every event in order.
pub(crate) trait Decode: Send + Unpin + 'static {
    /// The end marker's name, for messages (`[DONE]`).
    const END: &'static str;

    /// Reads one event (its `event:` name, empty when absent, and its
    /// `data:`), pushing what it means onto `out`: nothing for keep-alives.
    fn decode(&mut self, event: &str, data: &str, out: &mut VecDeque<Decoded>);
}

/// The chunks of an SSE body, read by `D`.
///
/// - The end marker ends the stream.
/// - An error event: before any content it is the attempt's error; after
///   content it is a `StreamInterrupted` item (protocol fault).
/// - An event that is not valid is skipped and counted in
///   [`MalformedChunks`].
/// - A body that ends or breaks without the end marker after content yields
///   a `StreamInterrupted` item (cut) — unless a finish reason was already
///   seen: then the answer is complete and the stream ends normally.
///
/// Chunk counts in faults are content-bearing chunks delivered.
pub(crate) struct SseChunks<D> {
    events: Events,
    decoder: D,
    pending: VecDeque<Decoded>,
    model: String,
    key: Option<ApiKey>,
    malformed: MalformedChunks,
    /// Size of the event being decoded, for the malformed-event log.
    event_bytes: usize,
    delivered: usize,
    finished: bool,
    done: bool,
}

impl<D: Decode> SseChunks<D> {
    pub(crate) fn new(
        response: reqwest::Response,
        decoder: D,
        model: &str,
        key: Option<ApiKey>,
        malformed: MalformedChunks,
    ) -> Self {
        SseChunks {
            events: Box::pin(response.bytes_stream().eventsource()),
            decoder,
            pending: VecDeque::new(),
            model: model.to_owned(),
            key,
            malformed,
            event_bytes: 0,
            delivered: 0,
            finished: false,
            done: false,
        }
    }

    fn skip(&mut self) {
        self.malformed.record();
        // The event's text may be user content: log its size, not the text.
        tracing::debug!(
            model = &*self.model,
            bytes = self.event_bytes,
            skipped = self.malformed.count(),
            "skipping a malformed stream event"
        );
    }

    /// The stream broke (`e`) or ended (`None`) before the end marker.
    fn on_break(&mut self, e: Option<EventStreamError<reqwest::Error>>) -> Option<ChatError> {
        self.done = true;
        if self.finished {
            // The answer was complete; only the terminator is missing.
            return None;
        }
        let (fault, error) = match e {
            None => {
                if self.delivered == 0 {
                    // `commit` reports an end with no content as the attempt's error.
                    return None;
                }
                let message = format!("the body ended without {}", D::END);
                let e = ChatError::new(ErrorKind::Connect, message);
                (StreamFault::Cut, e)
            }
            Some(EventStreamError::Transport(e)) => {
                (StreamFault::Cut, crate::http_error::body_error(e))
            }
            Some(EventStreamError::Utf8(_)) => (
                StreamFault::Protocol,
                ChatError::new(ErrorKind::Server, "the event stream is not valid UTF-8"),
            ),
            Some(EventStreamError::Parser(e)) => (
                StreamFault::Protocol,
                ChatError::new(
                    ErrorKind::Server,
                    format!(
                        "the event stream is malformed near {:?}",
                        excerpt(e.input.as_bytes(), 40)
                    ),
                ),
            ),
        };
        Some(self.fault(error, fault))
    }

    /// `e` as the attempt's error before content, or as a stream fault after.
    fn fault(&mut self, e: ChatError, fault: StreamFault) -> ChatError {
        self.done = true;
        self.pending.clear();
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
    type Item = Result<ChatChunk, ChatError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(decoded) = this.pending.pop_front() {
                match decoded {
                    Decoded::Chunk(chunk) => {
                        if chunk.has_content() {
                            this.delivered += 1;
                        }
                        if chunk.choices.iter().any(|c| c.finish_reason.is_some()) {
                            this.finished = true;
                        }
                        return Poll::Ready(Some(Ok(chunk)));
                    }
                    Decoded::Error(e) => {
                        return Poll::Ready(Some(Err(this.fault(e, StreamFault::Protocol))))
                    }
                    Decoded::Done => {
                        this.pending.clear();
                        this.done = true;
                    }
                    Decoded::Malformed => this.skip(),
                }
                continue;
            }
            if this.done {
                return Poll::Ready(None);
            }
            match ready!(this.events.as_mut().poll_next(cx)) {
                Some(Ok(event)) => {
                    this.event_bytes = event.data.len();
                    this.decoder
                        .decode(&event.event, &event.data, &mut this.pending);
                }
                Some(Err(e)) => return Poll::Ready(this.on_break(Some(e)).map(Err)),
                None => return Poll::Ready(this.on_break(None).map(Err)),
            }
        }
    }
}
