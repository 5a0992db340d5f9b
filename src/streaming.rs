//! The streaming commit point: an attempt succeeds only once real content has arrived.

use futures_core::Stream;
use futures_util::StreamExt;

use crate::error::{ChatError, ErrorKind};
use crate::response::{ChatChunk, ChatStream};

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
