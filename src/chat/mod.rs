//! The core types every layer speaks: the request, the response (complete or
//! streamed), the error and its kinds, and the log of attempts a call made.
//!
//! This module is the bottom of the crate: it imports nothing from the
//! layers, the providers, the config or the server. Inside it, each file
//! imports only the files listed before it:
//!
//! `limits`, `kind`, `config_error`, `model`, `per_model`, `malformed`,
//! `message` → `attempt` → `error` → `request`, `completion` → `chunk` →
//! `collect` → `stream` → `response` → `future`, `log` → `streaming`.

mod attempt;
mod chunk;
mod collect;
mod completion;
mod config_error;
mod error;
mod event;
mod extra_fields;
pub(crate) mod facts;
mod future;
mod kind;
mod limits;
mod log;
mod malformed;
mod message;
mod model;
mod per_model;
mod raw_body;
mod request;
mod response;
mod stream;
pub mod streaming;
pub(crate) mod walk;

pub use self::attempt::{Attempt, AttemptSummary};
pub use self::chunk::{ChatChunk, ChunkChoice, Delta, FunctionCallDelta, ToolCallDelta};
pub use self::completion::{ChatCompletion, Choice, Usage};
pub use self::config_error::{ConfigError, Problem};
pub use self::error::ChatError;
pub use self::future::ChatFuture;
pub use self::kind::{ErrorKind, SkipReason, StreamFault, TimeoutKind};
pub use self::log::{AttemptLog, LogScope, MaxUpstreamCalls};
pub use self::malformed::MalformedChunks;
pub use self::message::{
    Content, ContentPart, FunctionCall, ImagePart, ImageUrl, Message, Role, TextPart, ToolCall,
};
pub use self::model::{split_model_id, validate_model_id, validate_provider_name};
pub use self::per_model::PerModel;
pub use self::request::{ChatRequest, Deadline};
pub use self::response::{ChatResponse, ResponseBody};
pub use self::stream::ChatStream;

pub(crate) use self::chunk::Finishes;
pub(crate) use self::config_error::join_path;
pub(crate) use self::event::StreamEvent;
pub(crate) use self::model::validate_all;

/// Shuffles `items` in a fixed order drawn from `seed`: property tests use
/// it to write JSON objects with their keys in any order, reproducibly.
#[cfg(test)]
pub(crate) fn seeded_shuffle<T>(items: &mut [T], mut seed: u64) {
    for i in (1..items.len()).rev() {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        items.swap(i, (seed >> 33) as usize % (i + 1));
    }
}
