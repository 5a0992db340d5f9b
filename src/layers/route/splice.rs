//! What the caller of a recovered stream has received, and how the chunks of
//! the model that takes over fit after it.

use crate::chat::streaming::MAX_RECOVERY_TEXT;
use crate::chat::{ChatChunk, Usage};

/// How the chunks of the stream being read reach the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// The stream that served first: passed on as is.
    First,
    /// A continuation: passed on without a second role preamble.
    Resumed,
    /// A restarted answer: swallowed while it repeats the text already
    /// delivered (`matched` bytes of it so far), then passed on.
    Splice { matched: usize },
}

/// What to do with one chunk.
#[derive(Debug)]
pub(super) enum Verdict {
    /// Send it to the caller.
    Pass(ChatChunk),
    /// Drop it (a repeated preamble, or part of the repeated prefix).
    Skip,
    /// The restarted answer does not repeat what was delivered.
    Diverged(&'static str),
}

/// The answer as the caller has received it so far.
#[derive(Debug)]
pub(super) struct Answer {
    /// The text of choice 0.
    text: String,
    /// Content-bearing chunks passed on.
    chunks: usize,
    /// Only text of choice 0 so far, at most [`MAX_RECOVERY_TEXT`] of it:
    /// tool calls, refusals, several choices and longer answers are never
    /// spliced, and their text is not kept.
    spliceable: bool,
    /// Usage reported by the streams read before the current one.
    carried: Option<Usage>,
    /// Usage reported by the current stream.
    current: Option<Usage>,
    mode: Mode,
}

impl Answer {
    pub(super) fn new() -> Self {
        Answer {
            text: String::new(),
            chunks: 0,
            spliceable: true,
            carried: None,
            current: None,
            mode: Mode::First,
        }
    }

    /// The text delivered so far.
    pub(super) fn text(&self) -> &str {
        &self.text
    }

    /// Content chunks delivered so far.
    pub(super) fn chunks(&self) -> usize {
        self.chunks
    }

    /// Whether another model may finish this answer.
    pub(super) fn can_resume(&self) -> bool {
        self.spliceable && !self.text.is_empty()
    }

    /// A new stream takes over: a continuation of the text (`prefill`), or
    /// the answer restarted from the beginning.
    pub(super) fn resume(&mut self, prefill: bool) {
        if let Some(usage) = self.current.take() {
            self.carried = Some(add(self.carried.take(), &usage));
        }
        self.mode = if prefill {
            Mode::Resumed
        } else {
            Mode::Splice { matched: 0 }
        };
    }

    /// Whether the current stream may end here: a restarted answer must
    /// have repeated all the delivered text first.
    pub(super) fn may_end(&self) -> bool {
        match self.mode {
            Mode::Splice { matched } => matched >= self.text.len(),
            _ => true,
        }
    }

    /// Decides what the caller gets of `chunk`.
    pub(super) fn accept(&mut self, mut chunk: ChatChunk) -> Verdict {
        if let Some(usage) = chunk.usage.take() {
            // Providers report usage once, at the end: the caller gets the
            // sum over every stream that produced part of the answer.
            self.current = Some(usage.clone());
            chunk.usage = Some(match &self.carried {
                Some(carried) => add(Some(carried.clone()), &usage),
                None => usage,
            });
        }
        if self.mode != Mode::First {
            for choice in &mut chunk.choices {
                choice.delta.role = None;
            }
        }
        if let Mode::Splice { matched } = self.mode {
            match self.swallow(&mut chunk, matched) {
                Ok(Some(matched)) => {
                    self.mode = Mode::Splice { matched };
                    return Verdict::Skip;
                }
                Ok(None) => self.mode = Mode::Resumed,
                Err(why) => return Verdict::Diverged(why),
            }
        }
        if self.mode == Mode::Resumed && is_empty(&chunk) {
            return Verdict::Skip;
        }
        self.note(&chunk);
        Verdict::Pass(chunk)
    }

    /// Matches a restarted chunk against the delivered text: `Some(matched)`
    /// while it only repeats it (the chunk is swallowed), `None` once the
    /// chunk goes beyond (it keeps only the new part).
    fn swallow(
        &self,
        chunk: &mut ChatChunk,
        matched: usize,
    ) -> Result<Option<usize>, &'static str> {
        let remaining = &self.text.as_bytes()[matched..];
        if remaining.is_empty() {
            return Ok(None);
        }
        let mut piece = "";
        for choice in &chunk.choices {
            let delta = &choice.delta;
            if choice.index != 0 || delta.tool_calls.is_some() || delta.refusal.is_some() {
                return Err("the restarted answer is not plain text");
            }
            piece = delta.content.as_deref().unwrap_or("");
        }
        let common = piece.len().min(remaining.len());
        if piece.as_bytes()[..common] != remaining[..common] {
            return Err("the restarted answer differs from the text already delivered");
        }
        let finished = chunk.choices.iter().any(|c| c.finish_reason.is_some());
        if piece.len() <= remaining.len() {
            if finished || chunk.usage.is_some() {
                return Err("the restarted answer is shorter than the text already delivered");
            }
            return Ok(Some(matched + common));
        }
        // `remaining` is whole characters, so `common` is a boundary in `piece`.
        let rest = piece.get(common..).unwrap_or("").to_owned();
        if let Some(choice) = chunk.choices.first_mut() {
            choice.delta.content = Some(rest);
        }
        Ok(None)
    }

    fn note(&mut self, chunk: &ChatChunk) {
        if chunk.has_content() {
            self.chunks += 1;
        }
        for choice in &chunk.choices {
            let delta = &choice.delta;
            if choice.index != 0 || delta.tool_calls.is_some() || delta.refusal.is_some() {
                self.unspliceable();
            }
            if let (0, Some(text), true) = (choice.index, &delta.content, self.spliceable) {
                if self.text.len().saturating_add(text.len()) > MAX_RECOVERY_TEXT {
                    self.unspliceable();
                } else {
                    self.text.push_str(text);
                }
            }
        }
    }

    /// The answer can no longer be resumed: its text is not needed.
    fn unspliceable(&mut self) {
        self.spliceable = false;
        self.text = String::new();
    }
}

/// A chunk that says nothing once its role is removed.
fn is_empty(chunk: &ChatChunk) -> bool {
    chunk.usage.is_none()
        && chunk
            .choices
            .iter()
            .all(|c| !c.delta.has_content() && c.finish_reason.is_none())
}

fn add(sum: Option<Usage>, usage: &Usage) -> Usage {
    let mut sum = sum.unwrap_or_default();
    // Provider numbers: saturate rather than overflow.
    sum.prompt_tokens = sum.prompt_tokens.saturating_add(usage.prompt_tokens);
    sum.completion_tokens = sum
        .completion_tokens
        .saturating_add(usage.completion_tokens);
    sum.total_tokens = sum.total_tokens.saturating_add(usage.total_tokens);
    sum.extra.clone_from(&usage.extra);
    sum
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn chunk(value: serde_json::Value) -> ChatChunk {
        serde_json::from_value(value).unwrap()
    }

    fn text(t: &str) -> ChatChunk {
        chunk(json!({"choices": [{"index": 0, "delta": {"content": t}}]}))
    }

    fn passed(v: Verdict) -> Option<String> {
        match v {
            Verdict::Pass(c) => Some(c.text()),
            Verdict::Skip => None,
            Verdict::Diverged(why) => panic!("diverged: {why}"),
        }
    }

    fn delivered(parts: &[&str]) -> Answer {
        let mut answer = Answer::new();
        for p in parts {
            passed(answer.accept(text(p)));
        }
        answer
    }

    #[test]
    fn a_restart_is_swallowed_up_to_the_delivered_text_then_passed() {
        let mut answer = delivered(&["Hel", "lo wo"]);
        answer.resume(false);
        let role = chunk(
            json!({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}),
        );
        assert!(passed(answer.accept(role)).is_none());
        assert_eq!(passed(answer.accept(text("Hello"))), None);
        assert!(!answer.may_end());
        assert_eq!(
            passed(answer.accept(text(" world"))).as_deref(),
            Some("rld")
        );
        assert_eq!(passed(answer.accept(text("!"))).as_deref(), Some("!"));
        assert!(answer.may_end());
        assert_eq!(answer.text(), "Hello world!");
    }

    #[test]
    fn a_restart_that_differs_or_ends_early_diverges() {
        let mut answer = delivered(&["Hello"]);
        answer.resume(false);
        assert!(matches!(answer.accept(text("Help")), Verdict::Diverged(_)));

        let mut answer = delivered(&["Hello"]);
        answer.resume(false);
        let end = chunk(
            json!({"choices": [{"index": 0, "delta": {"content": "Hel"}, "finish_reason": "stop"}]}),
        );
        assert!(matches!(answer.accept(end), Verdict::Diverged(_)));
    }

    #[test]
    fn multibyte_text_splits_on_character_boundaries() {
        let mut answer = delivered(&["héllo ", "wö"]);
        answer.resume(false);
        assert_eq!(
            passed(answer.accept(text("héllo wörld"))).as_deref(),
            Some("rld")
        );
    }

    #[test]
    fn a_continuation_drops_its_preamble_and_usage_is_summed() {
        let mut answer = delivered(&["one "]);
        let first_usage = chunk(
            json!({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}),
        );
        passed(answer.accept(first_usage));
        answer.resume(true);
        let role = chunk(json!({"choices": [{"index": 0, "delta": {"role": "assistant"}}]}));
        assert!(passed(answer.accept(role)).is_none());
        assert_eq!(passed(answer.accept(text("two"))).as_deref(), Some("two"));
        let usage = chunk(
            json!({"choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 1, "total_tokens": 5}}),
        );
        let Verdict::Pass(last) = answer.accept(usage) else {
            panic!()
        };
        let usage = last.usage.unwrap();
        assert_eq!(
            (
                usage.prompt_tokens,
                usage.completion_tokens,
                usage.total_tokens
            ),
            (7, 2, 9)
        );
    }

    #[test]
    fn text_is_not_kept_once_the_answer_cannot_be_resumed() {
        let mut answer = delivered(&["some text "]);
        let call = chunk(
            json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{"}}]}}]}),
        );
        passed(answer.accept(call));
        for _ in 0..100 {
            passed(answer.accept(text("more text")));
        }
        assert!(!answer.can_resume());
        assert_eq!(
            answer.text(),
            "",
            "nothing held for a splice that cannot happen"
        );

        let mut answer = delivered(&[&"x".repeat(MAX_RECOVERY_TEXT)]);
        assert!(answer.can_resume());
        passed(answer.accept(text("y")));
        assert!(!answer.can_resume(), "past the limit");
        assert_eq!(answer.text(), "");
        assert_eq!(answer.chunks(), 2);
    }

    #[test]
    fn tool_calls_are_never_resumed() {
        let mut answer = Answer::new();
        let call = chunk(
            json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{"}}]}}]}),
        );
        passed(answer.accept(call));
        assert!(!answer.can_resume());
        assert_eq!(answer.chunks(), 1);
    }

    #[test]
    fn usage_sums_saturate() {
        let huge = Usage {
            prompt_tokens: u64::MAX,
            completion_tokens: u64::MAX - 1,
            total_tokens: u64::MAX,
            ..Usage::default()
        };
        let sum = add(Some(huge.clone()), &huge);
        assert_eq!(
            (sum.prompt_tokens, sum.completion_tokens, sum.total_tokens),
            (u64::MAX, u64::MAX, u64::MAX)
        );
    }
}
