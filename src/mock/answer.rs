//! The mock's answers: a completion or a stream built from a scripted
//! [`Outcome`], and a stream whose first token comes late.

use std::time::Duration;

use http::StatusCode;
use serde_json::Map;

use crate::chat::ResponseBody;
use crate::chat::{
    ChatChunk, ChatCompletion, ChatError, ChatStream, Choice, ChunkChoice, Delta, ErrorKind,
    Message, Role, StreamFault, Usage,
};
use crate::ChatResponse;

/// What a scripted reply does once its delay has passed.
#[derive(Clone, Debug)]
pub(super) enum Outcome {
    Text(String),
    Error {
        kind: ErrorKind,
        status: Option<StatusCode>,
        message: String,
        retry_after: Option<Duration>,
    },
    StreamCut {
        text: String,
        after_chunks: usize,
    },
}

/// `response` once the first content chunk of its stream, sent `delay`
/// after the head, is there.
pub(super) async fn late_commit(
    mut response: ChatResponse,
    delay: Duration,
) -> Result<ChatResponse, ChatError> {
    let Some(stream) = response.stream_mut() else {
        return Ok(response);
    };
    let stream = std::mem::replace(stream, ChatStream::from_items(Vec::new()));
    let committed = crate::chat::streaming::commit(late_first_token(stream, delay)).await?;
    *response.body_mut() = ResponseBody::Stream(committed);
    Ok(response)
}

/// `stream` with its first chunk (the role preamble) at once and the rest
/// after `delay`.
fn late_first_token(
    stream: ChatStream,
    delay: Duration,
) -> impl futures_core::Stream<Item = Result<ChatChunk, ChatError>> + Send + 'static {
    use futures_util::StreamExt;
    let mut stream = stream;
    futures_util::stream::once(async move {
        let head = stream.next().await;
        (head, stream)
    })
    .flat_map(move |(head, rest)| {
        let rest = futures_util::stream::once(tokio::time::sleep(delay))
            .filter_map(|()| async { None })
            .chain(rest);
        futures_util::stream::iter(head).chain(rest)
    })
}

pub(super) fn words(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

pub(super) fn answer(
    model: String,
    outcome: Outcome,
    stream: bool,
    prompt_tokens: u64,
) -> Result<ChatResponse, ChatError> {
    match outcome {
        Outcome::Error {
            kind,
            status,
            message,
            retry_after,
        } => {
            let mut e = ChatError::new(kind, message).with_model(model);
            if let Some(status) = status {
                e = e.with_status(status);
            }
            if let Some(after) = retry_after {
                e = e.with_retry_after(after);
            }
            Err(e)
        }
        Outcome::Text(text) => {
            let usage = Usage {
                prompt_tokens,
                completion_tokens: words(&text),
                total_tokens: prompt_tokens + words(&text),
                ..Default::default()
            };
            if stream {
                let mut items: Vec<_> = chunks(&model, &text).into_iter().map(Ok).collect();
                items.push(Ok(ChatChunk {
                    model: model.clone(),
                    usage: Some(usage),
                    ..Default::default()
                }));
                Ok(ChatResponse::stream(model, ChatStream::from_items(items)))
            } else {
                let completion = ChatCompletion {
                    id: "chatcmpl-mock".into(),
                    model: model.clone(),
                    choices: vec![Choice {
                        index: 0,
                        message: Message::new(Role::Assistant, text),
                        finish_reason: Some("stop".into()),
                        extra: Map::new(),
                    }],
                    usage: Some(usage),
                    ..Default::default()
                };
                Ok(ChatResponse::complete(model, completion))
            }
        }
        Outcome::StreamCut { text, after_chunks } => {
            if !stream {
                return Err(
                    ChatError::new(ErrorKind::Connect, "connection reset").with_model(model)
                );
            }
            let mut items: Vec<_> = chunks(&model, &text)
                .into_iter()
                .take(after_chunks + 1)
                .map(Ok)
                .collect();
            items.push(Err(ChatError::stream_interrupted(
                StreamFault::Cut,
                after_chunks,
                "connection closed",
            )
            .with_model(model.clone())));
            Ok(ChatResponse::stream(model, ChatStream::from_items(items)))
        }
    }
}

/// A role-only preamble, one chunk per word, and a final chunk with the finish reason.
fn chunks(model: &str, text: &str) -> Vec<ChatChunk> {
    let chunk = |delta: Delta, finish: Option<&str>| ChatChunk {
        id: "chatcmpl-mock".into(),
        model: model.to_owned(),
        choices: vec![ChunkChoice {
            index: 0,
            delta,
            finish_reason: finish.map(str::to_owned),
            extra: Map::new(),
        }],
        ..Default::default()
    };
    let mut out = vec![chunk(
        Delta {
            role: Some(Role::Assistant),
            ..Default::default()
        },
        None,
    )];
    for word in text.split_inclusive(' ') {
        out.push(chunk(
            Delta {
                content: Some(word.to_owned()),
                ..Default::default()
            },
            None,
        ));
    }
    out.push(chunk(Delta::default(), Some("stop")));
    out
}
