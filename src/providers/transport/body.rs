//! Reading a response body with a limit: a provider decides how many bytes
//! it sends, so the clients never buffer more than they are willing to hold.

use futures_util::StreamExt;

use super::upstream::Response;
use crate::chat::{ChatError, ErrorKind};
use crate::providers::http_error::{MAX_COMPLETION_BYTES, MAX_ERROR_BYTES};

/// The first `limit` bytes of `response`'s body, and whether there was more
/// (the rest is left unread). A body that breaks off, or ends before its
/// `Content-Length`, is an error (`Connect`): never a shortened body.
pub(crate) async fn read_at_most(
    response: &mut Response,
    limit: usize,
) -> Result<(Vec<u8>, bool), ChatError> {
    let declared = response
        .content_length
        .and_then(|n| usize::try_from(n).ok());
    if declared.is_some_and(|n| n > limit) {
        return Ok((Vec::new(), true));
    }
    let mut body = Vec::with_capacity(declared.unwrap_or(0));
    while let Some(chunk) = response.body.next().await.transpose()? {
        let room = limit - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            return Ok((body, true));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, false))
}

/// A complete answer's body, at most [`MAX_COMPLETION_BYTES`].
pub(crate) async fn completion(response: &mut Response) -> Result<Vec<u8>, ChatError> {
    let (body, more) = read_at_most(response, MAX_COMPLETION_BYTES).await?;
    if more {
        return Err(ChatError::new(
            ErrorKind::Server,
            format!(
                "the response body exceeds the limit of {} MiB",
                MAX_COMPLETION_BYTES >> 20
            ),
        ));
    }
    Ok(body)
}

/// Up to [`MAX_ERROR_BYTES`] of an error body; a body that breaks off
/// still leaves the status to classify by.
pub(crate) async fn error_excerpt(response: &mut Response) -> Vec<u8> {
    read_at_most(response, MAX_ERROR_BYTES)
        .await
        .map(|(body, _)| body)
        .unwrap_or_default()
}
