//! An OpenAI server-sent-event body to a stream of chunks that never ends
//! silently after a fault.

use std::pin::Pin;
use std::task::{ready, Context, Poll};

use eventsource_stream::{Event, EventStreamError, Eventsource};
use futures_core::Stream;
use serde_json::Value;

use super::error;
use crate::error::{ChatError, ErrorKind, StreamFault};
use crate::http_error::excerpt;
use crate::malformed::MalformedChunks;
use crate::response::ChatChunk;
use crate::secret::ApiKey;

type Events = Pin<Box<dyn Stream<Item = Result<Event, EventStreamError<reqwest::Error>>> + Send>>;

/// The chunks of an SSE body.
///
/// - `data: [DONE]` ends the stream.
/// - An error event (`{"error": {...}}`) is classified like an error body:
///   before any content it is the attempt's error; after content it is a
///   `StreamInterrupted` item (protocol fault).
/// - An event that is not a valid chunk is skipped and counted in
///   [`MalformedChunks`].
/// - A body that ends or breaks without `[DONE]` after content yields a
///   `StreamInterrupted` item (cut) — unless a finish reason was already
///   seen: then the answer is complete and the stream ends normally.
/// - The usage-only chunk after the finish reason is the last: the stream
///   ends with it, without waiting for `[DONE]`.
///
/// Chunk counts in faults are content-bearing chunks delivered.
pub(crate) struct SseChunks {
    events: Events,
    model: String,
    key: Option<ApiKey>,
    malformed: MalformedChunks,
    delivered: usize,
    finished: bool,
    done: bool,
    /// Remove usage: the client asked for it, the caller did not.
    strip_usage: bool,
}

impl SseChunks {
    pub(crate) fn new(
        response: reqwest::Response,
        model: &str,
        key: Option<ApiKey>,
        malformed: MalformedChunks,
    ) -> Self {
        SseChunks {
            events: Box::pin(response.bytes_stream().eventsource()),
            model: model.to_owned(),
            key,
            malformed,
            delivered: 0,
            finished: false,
            done: false,
            strip_usage: false,
        }
    }

    /// Removes `usage` from the chunks and drops usage-only chunks.
    pub(crate) fn strip_usage(mut self, strip: bool) -> Self {
        self.strip_usage = strip;
        self
    }

    fn on_event(&mut self, event: Event) -> Option<Result<ChatChunk, ChatError>> {
        let data = event.data.trim();
        if data.is_empty() {
            return None;
        }
        if data == "[DONE]" {
            self.done = true;
            return None;
        }
        let Ok(value) = serde_json::from_str::<Value>(data) else {
            return self.skip(data);
        };
        if event.event == "error" || value.get("error").is_some_and(|e| !e.is_null()) {
            let wrapped;
            let value = if value.get("error").is_some() {
                &value
            } else {
                wrapped = serde_json::json!({ "error": value });
                &wrapped
            };
            let e = error::from_json(value, self.key.as_ref())?;
            return Some(Err(self.fault(e, StreamFault::Protocol)));
        }
        match serde_json::from_value::<ChatChunk>(value) {
            Ok(mut chunk) => {
                if chunk.has_content() {
                    self.delivered += 1;
                }
                if chunk.choices.iter().any(|c| c.finish_reason.is_some()) {
                    self.finished = true;
                }
                let usage_only = chunk.choices.is_empty() && chunk.usage.is_some();
                if usage_only && self.finished {
                    // The usage chunk is the last one: finalize now rather
                    // than wait for a `[DONE]` that may never come.
                    self.done = true;
                }
                if self.strip_usage && chunk.usage.take().is_some() && usage_only {
                    return None;
                }
                Some(Ok(chunk))
            }
            Err(_) => self.skip(data),
        }
    }

    fn skip(&mut self, data: &str) -> Option<Result<ChatChunk, ChatError>> {
        self.malformed.record();
        // The event's text may be user content: log its size, not the text.
        tracing::debug!(
            model = %self.model,
            bytes = data.len(),
            skipped = self.malformed.count(),
            "skipping a malformed stream event"
        );
        None
    }

    /// The stream broke (`e`) or ended (`None`) before `[DONE]`.
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
                let e = ChatError::new(ErrorKind::Connect, "the body ended without [DONE]");
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

impl Stream for SseChunks {
    type Item = Result<ChatChunk, ChatError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            match ready!(this.events.as_mut().poll_next(cx)) {
                Some(Ok(event)) => {
                    if let Some(item) = this.on_event(event) {
                        return Poll::Ready(Some(item));
                    }
                }
                Some(Err(e)) => return Poll::Ready(this.on_break(Some(e)).map(Err)),
                None => return Poll::Ready(this.on_break(None).map(Err)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    /// A 200 SSE response that sends `events` and then stays open, silent.
    fn open_body(events: &[&str]) -> reqwest::Response {
        let frames: Vec<Result<bytes::Bytes, std::io::Error>> = events
            .iter()
            .map(|e| Ok(bytes::Bytes::from(format!("data: {e}\n\n"))))
            .collect();
        let body = futures_util::stream::iter(frames).chain(futures_util::stream::pending());
        let response = http::Response::builder()
            .header("content-type", "text/event-stream")
            .body(reqwest::Body::wrap_stream(body))
            .unwrap();
        reqwest::Response::from(response)
    }

    const WORD: &str = r#"{"choices":[{"index":0,"delta":{"content":"hi"}}]}"#;
    const FINISH: &str = r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#;
    const USAGE: &str =
        r#"{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}"#;

    #[tokio::test]
    async fn the_usage_chunk_after_the_finish_ends_the_stream_without_done() {
        let chunks = SseChunks::new(
            open_body(&[WORD, FINISH, USAGE]),
            "m",
            None,
            MalformedChunks::new(),
        );
        let items: Vec<_> = chunks.collect().await;
        assert_eq!(items.len(), 3);
        assert!(items[2].as_ref().unwrap().usage.is_some());
    }

    #[tokio::test]
    async fn usage_is_stripped_when_the_caller_did_not_ask() {
        let chunks = SseChunks::new(
            open_body(&[WORD, FINISH, USAGE]),
            "m",
            None,
            MalformedChunks::new(),
        )
        .strip_usage(true);
        let items: Vec<_> = chunks.collect().await;
        assert_eq!(
            items.len(),
            2,
            "the usage-only chunk is dropped, and the stream ends"
        );
        assert!(items.iter().flatten().all(|c| c.usage.is_none()));
    }
}
