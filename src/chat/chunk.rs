//! One piece of a streamed answer: the `chat.completion.chunk` object and
//! its deltas, and the checks every reader of a stream applies to it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::chat::completion::Usage;
use crate::chat::limits::{MAX_CHOICES, MAX_TOOL_CALLS};
use crate::chat::message::Role;

/// A `chat.completion.chunk` object of a stream.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatChunk {
    /// The provider's id for the completion.
    #[serde(default)]
    pub id: String,
    /// `chat.completion.chunk`.
    #[serde(default = "chunk_object")]
    pub object: String,
    /// Unix seconds.
    #[serde(default)]
    pub created: u64,
    /// The model as the provider named it.
    #[serde(default)]
    pub model: String,
    /// The deltas.
    #[serde(default)]
    pub choices: Vec<ChunkChoice>,
    /// Token usage (the last chunk, when usage was asked for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// Any other field, kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ChatChunk {
    /// Whether any choice carries content a user would see: text, a tool-call
    /// delta or a refusal. Role-only and empty chunks do not.
    pub fn has_content(&self) -> bool {
        self.choices.iter().any(|c| c.delta.has_content())
    }

    /// The text content of all choices' deltas, concatenated.
    pub fn text(&self) -> String {
        self.choices
            .iter()
            .filter_map(|c| c.delta.content.as_deref())
            .collect()
    }
}

/// One choice's delta within a chunk.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ChunkChoice {
    /// Which choice this delta extends.
    #[serde(default)]
    pub index: u32,
    /// What is new.
    #[serde(default)]
    pub delta: Delta,
    /// Set on the choice's last chunk.
    #[serde(default)]
    pub finish_reason: Option<String>,
    /// Any other field, kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The new part of a streamed message.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Delta {
    /// Set on the first chunk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// New text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// New tool-call fragments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCallDelta>>,
    /// New refusal text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
    /// Any other field, kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Delta {
    /// Whether the delta carries text, a tool-call fragment or a refusal.
    pub fn has_content(&self) -> bool {
        self.content.as_deref().is_some_and(|c| !c.is_empty())
            || self.tool_calls.as_ref().is_some_and(|t| !t.is_empty())
            || self.refusal.as_deref().is_some_and(|r| !r.is_empty())
    }
}

/// A fragment of a tool call in a stream.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ToolCallDelta {
    /// Which tool call of the message this extends.
    #[serde(default)]
    pub index: u32,
    /// Set on the call's first fragment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `function`, on the first fragment.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Name (first fragment) and a piece of the arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<FunctionCallDelta>,
}

/// A fragment of a function call.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FunctionCallDelta {
    /// The function's name, on the first fragment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A piece of the JSON arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<String>,
}

fn chunk_object() -> String {
    "chat.completion.chunk".to_owned()
}

/// What is wrong with `chunk`'s indexes, if anything.
pub(crate) fn check_indexes(chunk: &ChatChunk) -> Result<(), String> {
    for choice in &chunk.choices {
        if choice.index >= MAX_CHOICES {
            return Err(format!(
                "choice index {} is not below {MAX_CHOICES}",
                choice.index
            ));
        }
        for call in choice.delta.tool_calls.iter().flatten() {
            if call.index >= MAX_TOOL_CALLS {
                return Err(format!(
                    "tool-call index {} is not below {MAX_TOOL_CALLS}",
                    call.index
                ));
            }
        }
    }
    Ok(())
}

/// Which choices of a stream have started and finished: the answer is
/// complete once every choice seen has its finish reason.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Finishes {
    started: u128,
    finished: u128,
}

impl Finishes {
    /// Notes `chunk`'s choices (indexes at or above [`MAX_CHOICES`] are ignored).
    pub(crate) fn note(&mut self, chunk: &ChatChunk) {
        for choice in &chunk.choices {
            let Some(bit) = 1u128.checked_shl(choice.index) else {
                continue;
            };
            self.started |= bit;
            if choice.finish_reason.is_some() {
                self.finished |= bit;
            }
        }
    }

    /// Whether every choice seen has finished (and at least one has).
    pub(crate) fn complete(&self) -> bool {
        self.finished != 0 && self.started & !self.finished == 0
    }
}
