//! The mock server's side of the wire formats: reading a request, writing a
//! scripted reply (JSON or SSE, with its faults) in the shape of the API the
//! request came to.
//!
//! The faults are the same for every API; only the framing differs
//! ([`Frames`]).

mod anthropic;
mod openai;

use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use http::request::Parts;
use http::{Method, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;

use super::call::ServerCall;
use super::reply::{ReplyKind, ServerReply, StreamShape};

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub(crate) type Body = UnsyncBoxBody<Bytes, BoxError>;

/// A fixed `created` stamp: the mock needs no wall clock.
const CREATED: u64 = 1_700_000_000;

/// Which API a call came to, and so which shape its answer takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Api {
    /// OpenAI-compatible and Azure chat completions.
    OpenAi,
    /// Anthropic Messages (`POST /v1/messages`).
    Anthropic,
}

/// Reads a chat call, or answers the error response for a request that is
/// not one.
#[allow(clippy::result_large_err)]
pub(crate) fn parse(parts: &Parts, body: &[u8]) -> Result<(Api, ServerCall), Response<Body>> {
    let api = if parts.uri.path().ends_with("/v1/messages") {
        Api::Anthropic
    } else {
        Api::OpenAi
    };
    let call = match api {
        Api::OpenAi => openai::parse(parts, body)?,
        Api::Anthropic => anthropic::parse(parts, body)?,
    };
    Ok((api, call))
}

/// The message for a method other than POST, if it is one.
fn wrong_method(parts: &Parts) -> Option<String> {
    (parts.method != Method::POST)
        .then(|| format!("mock server: {} is not allowed, use POST", parts.method))
}

/// The path and query of a request, as recorded.
fn path_and_query(parts: &Parts) -> String {
    parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned())
}

/// How one API frames an answer.
trait Frames {
    /// A complete answer's JSON body.
    fn completion(&self, text: &str, finish: Option<&str>) -> String;
    /// An error body.
    fn error(&self, status: StatusCode, code: Option<&str>, message: &str) -> String;
    /// The events before the first content chunk.
    fn preamble(&self) -> Vec<Step>;
    /// One content chunk's event name and JSON, with a huge index when asked.
    fn piece_event(&self, text: &str, huge_index: bool) -> (Option<&'static str>, String);
    /// An event that is not valid JSON.
    fn malformed(&self) -> Step;
    /// An in-band error event.
    fn error_event(&self, code: &str, message: &str) -> Step;
    /// The events after the last content chunk as `shape` says: finish
    /// (unless left out), usage (garbled when asked), and the end marker
    /// (unless left out).
    fn finish(&self, text: &str, shape: &StreamShape) -> Vec<Step>;
    /// The end marker.
    fn end(&self) -> Step;

    /// One content chunk.
    fn piece(&self, text: &str) -> Step {
        let (name, json) = self.piece_event(text, false);
        event(name, &json)
    }
}

/// The response to `call`, or `None` to close the connection unanswered.
pub(crate) fn respond(reply: ServerReply, call: &ServerCall, api: Api) -> Option<Response<Body>> {
    let frames: Box<dyn Frames + '_> = match api {
        Api::OpenAi => Box::new(openai::OpenAiFrames(call, &reply.fields)),
        Api::Anthropic => Box::new(anthropic::AnthropicFrames(call)),
    };
    let finish = reply.stream.finish_reason.as_deref();
    let (status, content_type, steps) = match &reply.kind {
        // The server intercepts a hang before it gets here.
        ReplyKind::Reset | ReplyKind::Hang => return None,
        ReplyKind::Raw {
            status,
            content_type,
            body,
        } => {
            let mut steps = delay(reply.first_token_after);
            steps.push(Step::Data(Bytes::from(body.clone())));
            (*status, content_type.as_str(), steps)
        }
        ReplyKind::Error {
            status,
            code,
            message,
        } => {
            let mut steps = delay(reply.first_token_after);
            let body = frames.error(*status, code.as_deref(), message);
            steps.push(Step::Data(Bytes::from(body)));
            (*status, "application/json", steps)
        }
        ReplyKind::Text(text) if call.stream => (
            StatusCode::OK,
            "text/event-stream",
            stream(&reply, text, &*frames),
        ),
        ReplyKind::Text(text) => (
            StatusCode::OK,
            "application/json",
            complete(&reply, frames.completion(text, finish)),
        ),
    };
    let shape = &reply.stream;
    let complete = !matches!(reply.kind, ReplyKind::Text(_)) || !call.stream;
    let mut steps = steps;
    let mut length = None;
    if complete && shape.endless {
        steps.push(Step::Forever(Bytes::from(vec![b' '; 64 << 10])));
    } else if let (true, Some(short)) = (complete, shape.short_by) {
        let sent: usize = (steps.iter())
            .map(|s| if let Step::Data(d) = s { d.len() } else { 0 })
            .sum();
        length = Some(sent + short);
        steps.push(Step::Abort);
    }
    let mut response = Response::new(body(steps));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if let Some(length) = length {
        headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(length));
    }
    if let Ok(v) = HeaderValue::from_str(content_type) {
        headers.insert(CONTENT_TYPE, v);
    }
    for (name, value) in &reply.headers {
        if let (Ok(n), Ok(v)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::from_str(value),
        ) {
            headers.append(n, v);
        }
    }
    Some(response)
}

enum Step {
    Sleep(Duration),
    Data(Bytes),
    /// Keep the body open and silent.
    Hang,
    /// Fail the body: hyper drops the connection mid-body.
    Abort,
    /// These bytes, again and again, forever.
    Forever(Bytes),
}

fn delay(d: Duration) -> Vec<Step> {
    if d.is_zero() {
        Vec::new()
    } else {
        vec![Step::Sleep(d)]
    }
}

fn body(steps: Vec<Step>) -> Body {
    let frames = futures_util::stream::unfold(steps.into_iter(), |mut steps| async move {
        loop {
            match steps.next()? {
                Step::Sleep(d) => tokio::time::sleep(d).await,
                Step::Hang => std::future::pending::<()>().await,
                Step::Data(bytes) => return Some((Ok(Frame::data(bytes)), steps)),
                Step::Forever(bytes) => {
                    let frame = Frame::data(bytes.clone());
                    let rest: Vec<Step> =
                        std::iter::once(Step::Forever(bytes)).chain(steps).collect();
                    return Some((Ok(frame), rest.into_iter()));
                }
                Step::Abort => {
                    // Let hyper flush what was sent before: the client must
                    // see the head and the chunks, then the break.
                    tokio::task::yield_now().await;
                    let cut: BoxError = "mock server: body cut".into();
                    return Some((Err(cut), steps));
                }
            }
        }
    });
    BodyExt::boxed_unsync(StreamBody::new(frames))
}

/// Prompt words (every recorded message) and answer words: the mock's tokens.
fn token_counts(text: &str, call: &ServerCall) -> (usize, usize) {
    let prompt = call.messages.iter().map(|m| words(&m.text())).sum();
    (prompt, words(text))
}

fn words(text: &str) -> usize {
    text.split_whitespace().count()
}

/// A complete body with the reply's delays and a cut half way when scripted.
fn complete(reply: &ServerReply, json: String) -> Vec<Step> {
    let mut steps = delay(reply.first_token_after);
    if let Some((_, pause)) = reply.stream.stall {
        steps.push(Step::Sleep(pause));
    }
    if reply.stream.cut_after.is_some() {
        steps.push(Step::Data(Bytes::from(json[..json.len() / 2].to_owned())));
        steps.push(Step::Abort);
    } else {
        steps.push(Step::Data(Bytes::from(json)));
    }
    steps
}

/// A streamed answer with the reply's faults, framed by `frames`.
fn stream(reply: &ServerReply, text: &str, frames: &dyn Frames) -> Vec<Step> {
    let shape = &reply.stream;
    let pieces = split(text, shape.chunks);
    let mut steps = frames.preamble();
    for i in 0..=pieces.len() {
        if i == 0 {
            steps.extend(delay(reply.first_token_after));
        }
        if shape.malformed_after == Some(i) {
            steps.push(frames.malformed());
        }
        if let Some((_, pause)) = shape.stall.filter(|(n, _)| *n == i) {
            steps.push(Step::Sleep(pause));
        }
        if shape.cut_after == Some(i) {
            steps.push(Step::Abort);
            return steps;
        }
        if let Some((_, code, message)) = shape.error_after.as_ref().filter(|(n, ..)| *n == i) {
            steps.push(frames.error_event(code, message));
            return steps;
        }
        if let Some((_, bytes)) = shape.endless_line_after.filter(|(n, _)| *n == i) {
            steps.extend(endless_line(bytes));
            return steps;
        }
        if let Some(piece) = pieces.get(i) {
            let (name, json) = frames.piece_event(piece, shape.huge_index_after == Some(i));
            if shape.broken_after == Some(i) {
                let mut half = json.len() / 2;
                while !json.is_char_boundary(half) {
                    half -= 1;
                }
                steps.push(event(name, &json[..half]));
            } else {
                steps.push(event(name, &json));
            }
        }
    }
    steps.extend(frames.finish(text, shape));
    if let Some(extra) = &shape.after_done {
        if !extra.is_empty() {
            steps.push(frames.piece(extra));
        }
        steps.push(frames.end());
    }
    steps
}

/// A `data:` line of `bytes` bytes with no end, then silence.
fn endless_line(bytes: usize) -> Vec<Step> {
    const WRITE: usize = 64 << 10;
    let mut steps = vec![Step::Data(Bytes::from_static(b"data: "))];
    let piece = Bytes::from(vec![b'x'; WRITE]);
    let mut left = bytes;
    while left > 0 {
        let n = left.min(WRITE);
        steps.push(Step::Data(piece.slice(..n)));
        left -= n;
    }
    steps.push(Step::Hang);
    steps
}

/// One SSE event: `data: {payload}`, named when `event` is given.
fn event(name: Option<&str>, payload: &str) -> Step {
    let text = match name {
        Some(name) => format!("event: {name}\ndata: {payload}\n\n"),
        None => format!("data: {payload}\n\n"),
    };
    Step::Data(Bytes::from(text))
}

/// One piece per word (spaces kept), or `n` pieces of about equal length.
fn split(text: &str, n: Option<usize>) -> Vec<String> {
    let Some(n) = n else {
        return text.split_inclusive(' ').map(str::to_owned).collect();
    };
    let chars: Vec<char> = text.chars().collect();
    let n = n.min(chars.len()).max(1);
    (0..n)
        .map(|i| {
            chars[i * chars.len() / n..(i + 1) * chars.len() / n]
                .iter()
                .collect()
        })
        .filter(|s: &String| !s.is_empty())
        .collect()
}

/// A JSON error response with `body`.
fn json_response(status: StatusCode, body: String) -> Response<Body> {
    let mut response = Response::new(self::body(vec![Step::Data(Bytes::from(body))]));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn split_makes_n_pieces_that_join_back() {
        let pieces = split("abcdefghij", Some(3));
        assert_eq!(pieces.len(), 3);
        assert_eq!(pieces.concat(), "abcdefghij");
        assert_eq!(split("ab", Some(5)).len(), 2);
        assert_eq!(split("one two", None), ["one ", "two"]);
    }
}
