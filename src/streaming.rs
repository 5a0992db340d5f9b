//! Streaming that fails over safely: the commit point, and the marker the
//! layers and clients use to agree on deadlines.
//!
//! - An attempt succeeds only once real content has arrived ([`commit`]):
//!   before that, every fault is an ordinary error that retry and fallback
//!   handle.
//! - After it, a fault is an error item of kind
//!   [`StreamInterrupted`](crate::ErrorKind::StreamInterrupted), never a
//!   silent end.
//! - Deadlines for streams (headers, first token, idle gap, total) are set
//!   per model on the attempt [`Timeout`](crate::Timeout) layer with
//!   [`StreamDeadlines`](crate::timeout::StreamDeadlines); the headers
//!   deadline reaches the clients as a [`HeadersDeadline`] extension.
//! - Mid-stream recovery (opt-in, on
//!   [`ProviderFallback`](crate::ProviderFallback)) finishes a cut or stalled
//!   answer on the next candidate; see
//!   [`FallbackBuilder::recover_streams`](crate::FallbackBuilder::recover_streams).

use std::time::Duration;

use futures_core::Stream;
use futures_util::StreamExt;
use tokio::time::Instant;

use crate::attempt::AttemptLog;
use crate::error::{ChatError, ErrorKind};
use crate::response::{ChatChunk, ChatStream};

/// When the response head of a streamed call must have arrived (connect,
/// request sent, status and headers received).
///
/// The attempt [`Timeout`](crate::Timeout) layer puts it in the request's
/// extensions when the model has a headers deadline; the provider clients
/// fail with [`TimeoutKind::Headers`](crate::TimeoutKind::Headers) when it
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
/// and fallback apply to it unchanged: an error item, or an end with no
/// content. A stream that ends with no content but with a finish reason
/// (e.g. an empty answer cut by `max_tokens`) is a valid, empty answer.
pub async fn commit<S>(chunks: S) -> Result<ChatStream, ChatError>
where
    S: Stream<Item = Result<ChatChunk, ChatError>> + Send + 'static,
{
    let mut chunks = Box::pin(chunks);
    let mut preamble = Vec::new();
    loop {
        match chunks.next().await {
            Some(Ok(chunk)) => {
                let content = chunk.has_content();
                preamble.push(Ok(chunk));
                if content {
                    return Ok(ChatStream::new(
                        futures_util::stream::iter(preamble).chain(chunks),
                    ));
                }
            }
            Some(Err(e)) => return Err(e),
            None => {
                let finished = preamble.iter().any(|c| {
                    c.as_ref()
                        .is_ok_and(|c| c.choices.iter().any(|c| c.finish_reason.is_some()))
                });
                if finished {
                    return Ok(ChatStream::from_items(preamble));
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
    use crate::response::{ChunkChoice, Delta};
    use crate::Role;

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
    async fn an_end_without_content_fails_the_attempt() {
        let s = futures_util::stream::iter(vec![Ok(role_only())]);
        let e = commit(s).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Server);
        assert!(e.message().contains("before any content"));
    }
}
