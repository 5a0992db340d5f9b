//! A bounded server-sent-events parser: bytes in, `(event, data)` pairs out.
//!
//! It replaces a general SSE crate for three reasons a provider body makes
//! matter: every buffer has a limit (one event, so one line, is at most
//! [`MAX_EVENT_BYTES`](crate::chat::streaming::MAX_EVENT_BYTES)); each byte is
//! scanned once however the body is split (no rescan of a partial line per
//! network read); and invalid UTF-8 is reported at the line it is in, not
//! buffered until the body ends.
//!
//! It follows the HTML spec's event-stream grammar: lines end with CRLF, LF
//! or CR; a leading BOM is dropped; `:` starts a comment; `event` names the
//! event, `data` lines are joined with `\n`; `id`, `retry` and unknown fields
//! are ignored; a blank line dispatches the event, unless it has no data.

/// One dispatched event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Event {
    /// The `event:` field, empty when absent.
    pub(crate) event: String,
    /// The `data:` lines, joined with `\n`.
    pub(crate) data: String,
}

/// Why the body is not a usable event stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SseError {
    /// One event (its lines so far) is larger than the limit.
    TooLarge(usize),
    /// A line is not valid UTF-8.
    Utf8,
}

/// The parser's state between reads.
#[derive(Debug)]
pub(crate) struct EventParser {
    limit: usize,
    /// The current line, while it is incomplete.
    line: Vec<u8>,
    /// The last byte seen was a CR: an LF right after it ends nothing.
    after_cr: bool,
    started: bool,
    event: String,
    data: String,
    has_data: bool,
}

const BOM: &[u8] = "\u{feff}".as_bytes();

impl EventParser {
    /// A parser that fails once an event exceeds `limit` bytes.
    pub(crate) fn new(limit: usize) -> Self {
        EventParser {
            limit,
            line: Vec::new(),
            after_cr: false,
            started: false,
            event: String::new(),
            data: String::new(),
            has_data: false,
        }
    }

    /// Bytes held for the event being read.
    fn held(&self) -> usize {
        self.line.len() + self.data.len() + self.event.len()
    }

    /// Reads `bytes`, calling `emit` for each event they complete. On an
    /// error, the events before it have been emitted; the parser is then
    /// left in an unspecified (but safe) state.
    pub(crate) fn feed(
        &mut self,
        mut bytes: &[u8],
        mut emit: impl FnMut(Event),
    ) -> Result<(), SseError> {
        if bytes.is_empty() {
            return Ok(());
        }
        if self.after_cr && bytes.first() == Some(&b'\n') {
            bytes = &bytes[1..];
        }
        self.after_cr = false;
        while !bytes.is_empty() {
            let Some(end) = memchr::memchr2(b'\n', b'\r', bytes) else {
                self.line.extend_from_slice(bytes);
                if self.held() > self.limit {
                    return Err(SseError::TooLarge(self.limit));
                }
                return Ok(());
            };
            let crlf = bytes[end] == b'\r' && bytes.get(end + 1) == Some(&b'\n');
            if bytes[end] == b'\r' && end + 1 == bytes.len() {
                self.after_cr = true;
            }
            let rest = &bytes[end + if crlf { 2 } else { 1 }..];
            if self.line.is_empty() {
                self.line_done(&bytes[..end], &mut emit)?;
            } else {
                self.line.extend_from_slice(&bytes[..end]);
                let line = std::mem::take(&mut self.line);
                let result = self.line_done(&line, &mut emit);
                self.line = line;
                self.line.clear();
                result?;
            }
            bytes = rest;
        }
        Ok(())
    }

    fn line_done(&mut self, mut line: &[u8], emit: &mut impl FnMut(Event)) -> Result<(), SseError> {
        // Counted as received (BOM included), as the partial line is.
        if self.held() + line.len() > self.limit {
            return Err(SseError::TooLarge(self.limit));
        }
        if !self.started {
            self.started = true;
            line = line.strip_prefix(BOM).unwrap_or(line);
        }
        if line.is_empty() {
            let event = std::mem::take(&mut self.event);
            if std::mem::take(&mut self.has_data) {
                emit(Event {
                    event,
                    data: std::mem::take(&mut self.data),
                });
            }
            return Ok(());
        }
        if line[0] == b':' {
            return Ok(());
        }
        let line = std::str::from_utf8(line).map_err(|_| SseError::Utf8)?;
        // `:` is ASCII, so its index is a char boundary.
        let (name, value) = match memchr::memchr(b':', line.as_bytes()) {
            Some(at) => {
                let (name, value) = (&line[..at], &line[at + 1..]);
                (name, value.strip_prefix(' ').unwrap_or(value))
            }
            None => (line, ""),
        };
        match name {
            "event" => value.clone_into(&mut self.event),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(chunks: &[&[u8]], limit: usize) -> (Vec<Event>, Result<(), SseError>) {
        let mut parser = EventParser::new(limit);
        let mut out = Vec::new();
        for chunk in chunks {
            if let Err(e) = parser.feed(chunk, |e| out.push(e)) {
                return (out, Err(e));
            }
        }
        (out, Ok(()))
    }

    fn event(event: &str, data: &str) -> Event {
        Event {
            event: event.into(),
            data: data.into(),
        }
    }

    #[test]
    fn events_comments_and_line_endings_follow_the_spec() {
        let body: &[u8] =
            b"\xEF\xBB\xBFdata: a\r\n\r\n: keep-alive\n\nevent: x\rdata:b\rdata\r\rid: 7\nretry: 5\ndata: c\n\n";
        let (events, result) = parse(&[body], 1024);
        result.unwrap();
        assert_eq!(
            events,
            [event("", "a"), event("x", "b\n"), event("", "c")],
            "a data line with no colon is an empty value"
        );
    }

    #[test]
    fn an_event_without_data_is_not_dispatched_and_its_name_is_reset() {
        let (events, _) = parse(&[b"event: ping\n\ndata: x\n\n"], 1024);
        assert_eq!(events, [event("", "x")]);
    }

    #[test]
    fn a_crlf_split_across_reads_is_one_line_end() {
        let (events, _) = parse(&[b"data: a\r", b"\n", b"\r", b"\ndata: b\n\n"], 1024);
        assert_eq!(events, [event("", "a"), event("", "b")]);
    }

    #[test]
    fn an_endless_line_fails_at_the_limit_not_at_its_end() {
        let mut parser = EventParser::new(1000);
        let piece = [b'x'; 100];
        parser.feed(b"data: ", |_| {}).unwrap();
        let mut fed = 0;
        let error = loop {
            fed += 1;
            if let Err(e) = parser.feed(&piece, |_| {}) {
                break e;
            }
        };
        assert_eq!(error, SseError::TooLarge(1000));
        assert_eq!(fed, 10, "fails on the read that crosses the limit");
        assert!(parser.line.len() <= 1006 + 100);
    }

    #[test]
    fn many_short_data_lines_of_one_event_count_toward_the_limit() {
        let line = b"data: 0123456789\n";
        let mut parser = EventParser::new(100);
        let mut result = Ok(());
        for _ in 0..20 {
            result = parser.feed(line, |_| {});
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(SseError::TooLarge(100)));
    }

    #[test]
    fn invalid_utf8_fails_at_its_line() {
        let (events, result) = parse(&[b"data: ok\n\ndata: \xFF\xFE\n\n"], 1024);
        assert_eq!(events, [event("", "ok")]);
        assert_eq!(result, Err(SseError::Utf8));
    }
}
