//! The limits on what a provider's stream may make the crate hold (see the
//! table in [`streaming`](crate::chat::streaming)).

/// The largest server-sent event the provider clients read: 4 MiB.
pub const MAX_EVENT_BYTES: usize = 4 << 20;

/// The most [`commit`](crate::chat::streaming::commit) holds back before the first content chunk: 1 MiB of
/// chunks (as JSON).
pub const MAX_PREAMBLE_BYTES: usize = 1 << 20;

/// Choice indexes a stream may use are below this: 128, OpenAI's largest `n`.
pub const MAX_CHOICES: u32 = 128;

/// Tool-call indexes within one choice are below this: 128.
pub const MAX_TOOL_CALLS: u32 = 128;

/// The most text of an answer kept for mid-stream recovery: 4 MiB. A longer
/// answer that breaks is not resumed.
pub const MAX_RECOVERY_TEXT: usize = 4 << 20;
