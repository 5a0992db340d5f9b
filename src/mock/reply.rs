//! What the mock server answers to one call.

use std::time::Duration;

use http::StatusCode;

/// One scripted answer of a [`MockServer`](super::MockServer).
///
/// Build it from [`text`](Self::text), [`status`](Self::status),
/// [`error`](Self::error), [`raw`](Self::raw), [`reset`](Self::reset) or
/// [`hang`](Self::hang),
/// then shape it: delays, chunking, stream faults (a cut, a stall, a broken
/// or huge-index chunk, an endless line, an error event, content after the
/// end marker, no finish reason, garbled usage), headers. Chunk positions
/// count the answer's content chunks: `cut_after(3)` sends the role
/// preamble and three content chunks, then breaks the body. Delays run on
/// tokio time, so they cost nothing under paused time.
///
/// ```
/// use llm_fallback::mock::ServerReply;
/// use std::time::Duration;
///
/// // 60 chunks, the first after 2 s, broken after the 40th.
/// let reply = ServerReply::text("a long answer").in_chunks(60)
///     .first_token_after(Duration::from_secs(2))
///     .cut_after(40);
/// // A rate limit with a Retry-After header.
/// let limited = ServerReply::error(429, "rate_limit_exceeded", "slow down")
///     .with_retry_after(Duration::from_secs(2));
/// # let _ = (reply, limited);
/// ```
#[derive(Clone, Debug)]
pub struct ServerReply {
    pub(crate) kind: ReplyKind,
    pub(crate) headers_after: Duration,
    pub(crate) first_token_after: Duration,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) stream: StreamShape,
    /// Top-level fields set in every OpenAI completion and chunk object.
    pub(crate) fields: serde_json::Map<String, serde_json::Value>,
}

#[derive(Clone, Debug)]
pub(crate) enum ReplyKind {
    /// A completion (or stream) answering this text.
    Text(String),
    /// An error status with a body in the shape of the API called.
    Error {
        status: StatusCode,
        code: Option<String>,
        message: String,
    },
    /// Any status and body.
    Raw {
        status: StatusCode,
        content_type: String,
        body: String,
    },
    /// Close the connection without answering.
    Reset,
    /// Never answer.
    Hang,
}

/// The faults and framing of a streamed answer (and of a complete one,
/// where they make sense).
#[derive(Clone, Debug, Default)]
pub(crate) struct StreamShape {
    pub(crate) chunks: Option<usize>,
    pub(crate) cut_after: Option<usize>,
    pub(crate) stall: Option<(usize, Duration)>,
    pub(crate) malformed_after: Option<usize>,
    /// After how many chunks, the error's code and message.
    pub(crate) error_after: Option<(usize, String, String)>,
    pub(crate) without_done: bool,
    pub(crate) finish_reason: Option<String>,
    pub(crate) broken_after: Option<usize>,
    pub(crate) huge_index_after: Option<usize>,
    /// After how many chunks, and how many bytes.
    pub(crate) endless_line_after: Option<(usize, usize)>,
    pub(crate) after_done: Option<String>,
    pub(crate) without_finish: bool,
    pub(crate) garbled_usage: bool,
    pub(crate) endless: bool,
    pub(crate) short_by: Option<usize>,
}

impl ServerReply {
    fn of(kind: ReplyKind) -> Self {
        ServerReply {
            kind,
            headers_after: Duration::ZERO,
            first_token_after: Duration::ZERO,
            headers: Vec::new(),
            stream: StreamShape::default(),
            fields: serde_json::Map::new(),
        }
    }

    /// Answers `text`: a `chat.completion`, or a stream of one chunk per
    /// word (see [`in_chunks`](Self::in_chunks)) with a role preamble, a
    /// finish chunk, a usage chunk when the request asked for
    /// `stream_options.include_usage`, and `data: [DONE]`.
    ///
    /// A call to `/v1/messages` gets Anthropic's shape instead: a `message`
    /// object, or the events `message_start`, `content_block_start`, `ping`,
    /// one `content_block_delta` per chunk, `content_block_stop`,
    /// `message_delta` (stop reason and usage) and `message_stop`.
    pub fn text(text: impl Into<String>) -> Self {
        Self::of(ReplyKind::Text(text.into()))
    }

    /// Fails with `status` and an error body with the message
    /// `mock <status>`: OpenAI's shape (`{"error": {"message", "type",
    /// "code": null}}`), or on `/v1/messages` Anthropic's (`{"type":
    /// "error", "error": {"type", "message"}}` with the error type Anthropic
    /// sends for that status, e.g. `overloaded_error` for 529).
    ///
    /// # Panics
    ///
    /// If `status` is not a valid HTTP status (100 to 999).
    pub fn status(status: u16) -> Self {
        let status = StatusCode::from_u16(status).expect("a valid HTTP status");
        Self::of(ReplyKind::Error {
            status,
            code: None,
            message: format!("mock {status}"),
        })
    }

    /// Fails with `status` and an error body carrying `code` and `message`:
    /// OpenAI's `code` (`context_length_exceeded`, `insufficient_quota` ...),
    /// or on `/v1/messages` Anthropic's error `type` (`overloaded_error`,
    /// `invalid_request_error` ...).
    ///
    /// # Panics
    ///
    /// If `status` is not a valid HTTP status.
    pub fn error(status: u16, code: &str, message: &str) -> Self {
        Self::of(ReplyKind::Error {
            status: StatusCode::from_u16(status).expect("a valid HTTP status"),
            code: Some(code.to_owned()),
            message: message.to_owned(),
        })
    }

    /// Answers `status` with `body` as is (`content_type` e.g.
    /// `application/json` or `text/html`): for malformed or odd bodies.
    ///
    /// # Panics
    ///
    /// If `status` is not a valid HTTP status.
    pub fn raw(status: u16, content_type: &str, body: impl Into<String>) -> Self {
        Self::of(ReplyKind::Raw {
            status: StatusCode::from_u16(status).expect("a valid HTTP status"),
            content_type: content_type.to_owned(),
            body: body.into(),
        })
    }

    /// Reads the request, then closes the connection without answering:
    /// the client sees the connection closed before a response head.
    pub fn reset() -> Self {
        Self::of(ReplyKind::Reset)
    }

    /// Reads the request and never answers: the connection stays open and
    /// silent until the client gives up.
    pub fn hang() -> Self {
        Self::of(ReplyKind::Hang)
    }

    /// Waits `delay` before sending the response head (or resetting).
    pub fn after(mut self, delay: Duration) -> Self {
        self.headers_after = delay;
        self
    }

    /// Waits `delay` between the head (and the role preamble) and the first
    /// content chunk; for a complete answer, before the body.
    pub fn first_token_after(mut self, delay: Duration) -> Self {
        self.first_token_after = delay;
        self
    }

    /// Splits a streamed text into `n` chunks of about equal length
    /// (at most one per character). Default: one chunk per word.
    pub fn in_chunks(mut self, n: usize) -> Self {
        self.stream.chunks = Some(n.max(1));
        self
    }

    /// Breaks the body after `n` content chunks: the chunked body is aborted,
    /// as when a connection drops. For a complete answer, the JSON breaks off
    /// half way.
    pub fn cut_after(mut self, n: usize) -> Self {
        self.stream.cut_after = Some(n);
        self
    }

    /// Sends nothing for `pause` after `n` content chunks, then goes on.
    /// For a complete answer, delays the body like `first_token_after`.
    pub fn stall_after(mut self, n: usize, pause: Duration) -> Self {
        self.stream.stall = Some((n, pause));
        self
    }

    /// Sends an event that is not valid JSON after `n` content chunks
    /// (streams only).
    pub fn malformed_after(mut self, n: usize) -> Self {
        self.stream.malformed_after = Some(n);
        self
    }

    /// Sends the content chunk after the first `n` with its JSON cut in half
    /// (a complete event whose data breaks off mid-string), then the rest of
    /// the answer as usual (streams only): the piece's text never arrives
    /// whole.
    pub fn broken_chunk_after(mut self, n: usize) -> Self {
        self.stream.broken_after = Some(n);
        self
    }

    /// Sends the content chunk after the first `n` with a huge index
    /// (streams only): choice index `4294967295`, or on `/v1/messages` the
    /// content block index `18446744073709551615`.
    pub fn huge_index_after(mut self, n: usize) -> Self {
        self.stream.huge_index_after = Some(n);
        self
    }

    /// After `n` content chunks, sends a `data:` line of `bytes` bytes that
    /// never ends (no newline, in 64 KiB writes), then keeps the body open
    /// and silent (streams only).
    pub fn endless_line_after(mut self, n: usize, bytes: usize) -> Self {
        self.stream.endless_line_after = Some((n, bytes));
        self
    }

    /// After the end marker (`[DONE]`, `message_stop`), sends a content
    /// chunk with `text` (none when empty) and the end marker again: a
    /// second `[DONE]`, content after `[DONE]` (streams only).
    pub fn after_done(mut self, text: impl Into<String>) -> Self {
        self.stream.after_done = Some(text.into());
        self
    }

    /// Sends no finish reason (no finish chunk; on `/v1/messages` no
    /// `message_delta`), the end marker still (streams only).
    pub fn without_finish_reason(mut self) -> Self {
        self.stream.without_finish = true;
        self
    }

    /// Sends usage counts that are not numbers (`"prompt_tokens": "many"`;
    /// on `/v1/messages`, in `message_delta`), streams only.
    pub fn garbled_usage(mut self) -> Self {
        self.stream.garbled_usage = true;
        self
    }

    /// Sends an in-band error event after `n` content chunks, then ends the
    /// body without its end marker (streams only): `data: {"error": {...}}`,
    /// or on `/v1/messages` an `event: error` with `code` as the error type.
    pub fn error_event_after(mut self, n: usize, code: &str, message: &str) -> Self {
        self.stream.error_after = Some((n, code.to_owned(), message.to_owned()));
        self
    }

    /// Ends the stream without `data: [DONE]` (after the finish and usage
    /// chunks), or on `/v1/messages` without `message_stop`.
    pub fn without_done(mut self) -> Self {
        self.stream.without_done = true;
        self
    }

    /// The finish reason of the answer. Default: `stop`. On `/v1/messages`
    /// it is sent as Anthropic's stop reason (`stop` as `end_turn`, `length`
    /// as `max_tokens`, `tool_calls` as `tool_use`, any other as given).
    pub fn finish_reason(mut self, reason: impl Into<String>) -> Self {
        self.stream.finish_reason = Some(reason.into());
        self
    }

    /// A complete answer or an error whose body never ends: after the JSON,
    /// blank space forever (still valid JSON so far), to prove a client
    /// reads bodies with a limit.
    pub fn endless(mut self) -> Self {
        self.stream.endless = true;
        self
    }

    /// A complete answer or an error whose `Content-Length` promises `n`
    /// bytes more than the body has, then the connection closes: a body
    /// shorter than its length (the JSON sent is whole and valid).
    pub fn short_by(mut self, n: usize) -> Self {
        self.stream.short_by = Some(n);
        self
    }

    /// A `Retry-After` far beyond anything sane (`1e20` seconds, and
    /// `retry-after-ms: 1e300`): parsing it must clamp, never panic.
    pub fn with_huge_retry_after(self) -> Self {
        self.with_header("retry-after", "1e20")
            .with_header("retry-after-ms", "1e300")
    }

    /// Adds a response header, e.g. `("retry-after", "<HTTP date>")`.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Adds `Retry-After` in whole seconds (rounded up).
    pub fn with_retry_after(self, after: Duration) -> Self {
        let secs = after
            .as_secs()
            .saturating_add(u64::from(after.subsec_nanos() > 0));
        self.with_header("retry-after", secs.to_string())
    }

    /// Sets top-level fields of every `chat.completion` and
    /// `chat.completion.chunk` object the reply sends (OpenAI shape only),
    /// e.g. `{"id": "chatcmpl-b", "created": 1700000001,
    /// "system_fingerprint": "fp_b"}`: the mock's defaults are the same for
    /// every call. A value that is not a JSON object is ignored.
    pub fn with_fields(mut self, fields: serde_json::Value) -> Self {
        if let serde_json::Value::Object(fields) = fields {
            self.fields.extend(fields);
        }
        self
    }

    /// Adds `retry-after-ms` (OpenAI's and Azure's finer header).
    pub fn with_retry_after_ms(self, ms: f64) -> Self {
        self.with_header("retry-after-ms", ms.to_string())
    }
}
