//! Token estimates, before a call and for an answer that reported no usage.

use crate::chat::{Content, ContentPart};
use crate::clamp;
use crate::ChatRequest;

/// The tokens a call may use, before it is made: its [prompt](prompt_tokens)
/// plus the completion budget the request sets (`max_completion_tokens` or
/// `max_tokens`). Both come from the client: each is clamped, so a
/// `max_tokens` near `u64::MAX` is a large count, not an overflow.
pub(super) fn estimate_tokens(request: &ChatRequest) -> u64 {
    let budget = ["max_completion_tokens", "max_tokens"]
        .iter()
        .find_map(|k| request.extra().get(*k).and_then(|v| v.as_u64()))
        .unwrap_or(0);
    clamp::tokens(prompt_tokens(request) + clamp::tokens(budget))
}

/// The prompt's tokens, estimated: a quarter of its text bytes (about 4
/// characters per token in English).
pub(super) fn prompt_tokens(request: &ChatRequest) -> u64 {
    let bytes: usize = request
        .all_messages()
        .map(|m| match &m.content {
            None => 0,
            Some(Content::Text(text)) => text.len(),
            Some(Content::Parts(parts)) => parts
                .iter()
                .map(|p| match p {
                    ContentPart::Text(t) => t.text.len(),
                    _ => 0,
                })
                .sum(),
        })
        .sum();
    text_tokens(bytes)
}

/// Tokens in `bytes` of text, estimated (rounded up) and clamped.
pub(super) fn text_tokens(bytes: usize) -> u64 {
    clamp::tokens(u64::try_from(bytes).unwrap_or(u64::MAX).div_ceil(4))
}
