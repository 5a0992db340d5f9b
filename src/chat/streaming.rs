//! Streaming that fails over safely: the commit point, and the marker the
//! layers and clients use to agree on deadlines.
//!
//! - An attempt succeeds only once real content has arrived ([`commit`]):
//!   before that, every fault is an ordinary error that retry and fallback
//!   handle.
//! - After it, a fault is an error item of kind
//!   [`StreamInterrupted`](crate::chat::ErrorKind::StreamInterrupted), never a
//!   silent end.
//! - Deadlines for streams (headers, first token, idle gap, total) are set
//!   per model on the attempt `Timeout` layer with
//!   `StreamDeadlines`; the headers
//!   deadline reaches the clients as a [`HeadersDeadline`] extension.
//! - Mid-stream recovery (opt-in, on
//!   `ProviderFallback`) finishes a cut or stalled
//!   answer on the next candidate; see
//!   `RouteOptions::recover_streams`.
//!
//! # What a stream may hold
//!
//! Every buffer fed by a provider's stream has a limit. Exceeding one is a
//! fault of the attempt: before the commit point an error of kind
//! [`Server`](crate::chat::ErrorKind::Server) (retry and fallback apply), after it
//! a [`StreamInterrupted`](crate::chat::ErrorKind::StreamInterrupted) item
//! ([`StreamFault::Protocol`](crate::chat::StreamFault::Protocol)).
//!
//! | buffer | limit |
//! |---|---|
//! | one server-sent event (so one line), as the clients read it | [`MAX_EVENT_BYTES`], 4 MiB |
//! | the preamble held back until the first content chunk ([`commit`]) | [`MAX_PREAMBLE_BYTES`], 1 MiB |
//! | choice indexes of a chunk | below [`MAX_CHOICES`], 128 |
//! | tool-call indexes of a choice | below [`MAX_TOOL_CALLS`], 128 |
//! | the answer's text kept for mid-stream recovery | [`MAX_RECOVERY_TEXT`], 4 MiB: a longer answer is not resumed |
//!
//! The event limit leaves room for long tool-call arguments (a provider
//! sends them in fragments; Anthropic's whole `input` may come in one event).
//! Chunk indexes are checked by the clients and by
//! [`ChatStream::collect_completion`], which allocates one entry per index.

use std::time::Duration;

use futures_core::Stream;
use futures_util::StreamExt;
use tokio::time::Instant;

pub use crate::chat::limits::{
    MAX_CHOICES, MAX_EVENT_BYTES, MAX_PREAMBLE_BYTES, MAX_RECOVERY_TEXT, MAX_TOOL_CALLS,
};

use crate::chat::chunk::{ChatChunk, Finishes};
use crate::chat::error::ChatError;
use crate::chat::event::StreamEvent;
use crate::chat::kind::ErrorKind;
use crate::chat::log::AttemptLog;
use crate::chat::stream::ChatStream;

/// When the response head of a streamed call must have arrived (connect,
/// request sent, status and headers received).
///
/// The attempt `Timeout` layer puts it in the request's
/// extensions when the model has a headers deadline; the provider clients
/// fail with [`TimeoutKind::Headers`](crate::chat::TimeoutKind::Headers) when it
/// passes. A leaf service that has no response head may ignore it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeadersDeadline(pub Instant);

/// Records in the attempt at `index` that its committed stream ended with
/// `error` (the log first showed it as a success, at the commit point).
/// Returns whether it did; an attempt already marked failed is left alone.
pub(crate) fn record_stream_fault(
    log: &AttemptLog,
    index: usize,
    error: &ChatError,
    latency: Option<Duration>,
) -> bool {
    let mut changed = false;
    log.amend(index, |attempt| {
        if attempt.is_success() {
            attempt.error = Some(error.kind());
            attempt.status = error.status();
            attempt.message = error.message().to_owned();
            if let Some(latency) = latency {
                attempt.latency = latency;
            }
            changed = true;
        }
    });
    changed
}

/// Reads `chunks` until the first content-bearing chunk (text, a tool-call
/// delta or a refusal) and returns a stream that replays the held-back
/// preamble (role-only or empty chunks) with it, then the rest.
///
/// Every fault before that point is returned as the attempt's error, so retry
/// and fallback apply to it unchanged: an error item, an end with no
/// content, or a preamble larger than [`MAX_PREAMBLE_BYTES`] (kind
/// `Server`). A stream that ends with no content but with a finish reason
/// (e.g. an empty answer cut by `max_tokens`) is a valid, empty answer.
pub async fn commit<S>(chunks: S) -> Result<ChatStream, ChatError>
where
    S: Stream<Item = Result<ChatChunk, ChatError>> + Send + 'static,
{
    commit_events(chunks.map(|item| item.map(StreamEvent::typed))).await
}

/// [`commit`] for a stream of events, which keep the provider's JSON.
pub(crate) async fn commit_events<S>(events: S) -> Result<ChatStream, ChatError>
where
    S: Stream<Item = Result<StreamEvent, ChatError>> + Send + 'static,
{
    let mut events = Box::pin(events);
    let mut preamble = Vec::new();
    let mut held = 0usize;
    loop {
        match events.next().await {
            Some(Ok(event)) => {
                let content = event.has_content();
                if !content {
                    held = held.saturating_add(event.json_len());
                    if held > MAX_PREAMBLE_BYTES {
                        return Err(ChatError::new(
                            ErrorKind::Server,
                            format!(
                                "the stream sent more than {MAX_PREAMBLE_BYTES} bytes before any content"
                            ),
                        ));
                    }
                }
                preamble.push(Ok(event));
                if content {
                    return Ok(ChatStream::from_events(
                        futures_util::stream::iter(preamble).chain(events),
                    ));
                }
            }
            Some(Err(e)) => return Err(e),
            None => {
                let mut finishes = Finishes::default();
                for event in preamble.iter().flatten() {
                    event.note(&mut finishes);
                }
                if finishes.complete() {
                    return Ok(ChatStream::from_events(futures_util::stream::iter(
                        preamble,
                    )));
                }
                return Err(ChatError::new(
                    ErrorKind::Server,
                    "stream ended before any content",
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::chunk::{ChunkChoice, Delta};
    use crate::chat::message::Role;

    fn role_only() -> ChatChunk {
        ChatChunk {
            choices: vec![ChunkChoice {
                delta: Delta {
                    role: Some(Role::Assistant),
                    ..Default::default()
                },
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn text(t: &str) -> ChatChunk {
        ChatChunk {
            choices: vec![ChunkChoice {
                delta: Delta {
                    content: Some(t.into()),
                    ..Default::default()
                },
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn preamble_is_released_with_the_first_content() {
        let s = futures_util::stream::iter(vec![Ok(role_only()), Ok(text("hi")), Ok(text("!"))]);
        let stream = commit(s).await.unwrap();
        let items: Vec<_> = stream.collect().await;
        assert_eq!(items.len(), 3);
    }

    #[tokio::test]
    async fn an_error_before_content_fails_the_attempt() {
        let s = futures_util::stream::iter(vec![
            Ok(role_only()),
            Err(ChatError::new(ErrorKind::Server, "overloaded")),
        ]);
        let e = commit(s).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Server);
        assert_eq!(e.message(), "overloaded");
    }

    #[tokio::test]
    async fn an_endless_preamble_fails_the_attempt_at_its_limit() {
        let s = futures_util::stream::repeat_with(|| Ok(role_only()));
        let e = commit(s).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Server);
        assert!(e.message().contains("before any content"), "{e}");
    }

    #[tokio::test]
    async fn an_end_without_content_fails_the_attempt() {
        let s = futures_util::stream::iter(vec![Ok(role_only())]);
        let e = commit(s).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Server);
        assert!(e.message().contains("before any content"));
    }
}
