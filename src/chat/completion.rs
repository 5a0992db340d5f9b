//! A complete answer: the `chat.completion` object and its token usage.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::chat::message::Message;

/// A `chat.completion` object.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatCompletion {
    /// The provider's id for the completion.
    #[serde(default)]
    pub id: String,
    /// `chat.completion`.
    #[serde(default = "completion_object")]
    pub object: String,
    /// Unix seconds.
    #[serde(default)]
    pub created: u64,
    /// The model as the provider named it.
    #[serde(default)]
    pub model: String,
    /// The answers.
    #[serde(default)]
    pub choices: Vec<Choice>,
    /// Token usage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// Any other field (`system_fingerprint`, `service_tier` ...), kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn completion_object() -> String {
    "chat.completion".to_owned()
}

/// One answer of a completion.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    /// Position among the choices.
    #[serde(default)]
    pub index: u32,
    /// The assistant's message.
    pub message: Message,
    /// `stop`, `length`, `tool_calls`, `content_filter` ...
    #[serde(default)]
    pub finish_reason: Option<String>,
    /// Any other field (`logprobs` ...), kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Token counts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Tokens in the prompt.
    #[serde(default)]
    pub prompt_tokens: u64,
    /// Tokens in the answer.
    #[serde(default)]
    pub completion_tokens: u64,
    /// Their sum.
    #[serde(default)]
    pub total_tokens: u64,
    /// Details (`prompt_tokens_details` ...), kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

crate::chat::extra_fields::deserialize_with_extra!(Usage, Usage::default(), {
    "prompt_tokens" => prompt_tokens,
    "completion_tokens" => completion_tokens,
    "total_tokens" => total_tokens,
});
