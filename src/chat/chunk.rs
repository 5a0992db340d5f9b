//! One piece of a streamed answer: the `chat.completion.chunk` object and
//! its deltas, and the checks every reader of a stream applies to it.

use serde::{Deserialize, Serialize};

use crate::chat::extra_fields::deserialize_with_extra;
use serde_json::{Map, Value};

use crate::chat::completion::Usage;
use crate::chat::message::Role;

/// A `chat.completion.chunk` object of a stream.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
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
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
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
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
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

deserialize_with_extra!(ChatChunk, ChatChunk { object: chunk_object(), ..Default::default() }, {
    "id" => id,
    "object" => object,
    "created" => created,
    "model" => model,
    "choices" => choices,
    "usage" => usage,
});

deserialize_with_extra!(ChunkChoice, ChunkChoice::default(), {
    "index" => index,
    "delta" => delta,
    "finish_reason" => finish_reason,
});

deserialize_with_extra!(Delta, Delta::default(), {
    "role" => role,
    "content" => content,
    "tool_calls" => tool_calls,
    "refusal" => refusal,
});

fn chunk_object() -> String {
    "chat.completion.chunk".to_owned()
}

/// Which choices of a stream have started and finished: the answer is
/// complete once every choice seen has its finish reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Finishes {
    started: u128,
    finished: u128,
}

impl Finishes {
    /// Notes `chunk`'s choices (indexes at or above
    /// [`MAX_CHOICES`](crate::chat::limits::MAX_CHOICES) are ignored).
    pub(crate) fn note(&mut self, chunk: &ChatChunk) {
        for choice in &chunk.choices {
            self.note_choice(choice.index, choice.finish_reason.is_some());
        }
    }

    /// Notes choice `index`, finished or not (at or above
    /// [`MAX_CHOICES`](crate::chat::limits::MAX_CHOICES): ignored).
    pub(crate) fn note_choice(&mut self, index: u32, finished: bool) {
        let Some(bit) = 1u128.checked_shl(index) else {
            return;
        };
        self.started |= bit;
        if finished {
            self.finished |= bit;
        }
    }

    /// Notes what `other` noted.
    pub(crate) fn merge(&mut self, other: Finishes) {
        self.started |= other.started;
        self.finished |= other.finished;
    }

    /// Whether every choice seen has finished (and at least one has).
    pub(crate) fn complete(&self) -> bool {
        self.finished != 0 && self.started & !self.finished == 0
    }
}

#[cfg(test)]
mod read_tests {
    //! The chunk types read without `flatten` exactly as the derived,
    //! flattened reading did: same successes, same values, same failures.

    use proptest::prelude::*;
    use serde::{Deserialize, Serialize};
    use serde_json::{json, Map, Value};

    use super::{chunk_object, ChatChunk, ToolCallDelta};
    use crate::chat::message::Role;

    #[derive(Serialize, Deserialize)]
    struct RefChunk {
        #[serde(default)]
        id: String,
        #[serde(default = "chunk_object")]
        object: String,
        #[serde(default)]
        created: u64,
        #[serde(default)]
        model: String,
        #[serde(default)]
        choices: Vec<RefChoice>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        usage: Option<RefUsage>,
        #[serde(flatten)]
        extra: Map<String, Value>,
    }

    #[derive(Serialize, Deserialize)]
    struct RefChoice {
        #[serde(default)]
        index: u32,
        #[serde(default)]
        delta: RefDelta,
        #[serde(default)]
        finish_reason: Option<String>,
        #[serde(flatten)]
        extra: Map<String, Value>,
    }

    #[derive(Default, Serialize, Deserialize)]
    struct RefDelta {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        role: Option<Role>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        content: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tool_calls: Option<Vec<ToolCallDelta>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        refusal: Option<String>,
        #[serde(flatten)]
        extra: Map<String, Value>,
    }

    #[derive(Serialize, Deserialize)]
    struct RefUsage {
        #[serde(default)]
        prompt_tokens: u64,
        #[serde(default)]
        completion_tokens: u64,
        #[serde(default)]
        total_tokens: u64,
        #[serde(flatten)]
        extra: Map<String, Value>,
    }

    fn scalar() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("null".to_owned()),
            Just("true".to_owned()),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<u32>().prop_map(|n| n.to_string()),
            (-1e3f64..1e3).prop_map(|f| Value::from(f).to_string()),
            "[a-z\"\\\\é]{0,6}".prop_map(|s| Value::from(s).to_string()),
            Just(r#""assistant""#.to_owned()),
            Just("[]".to_owned()),
            Just("{}".to_owned()),
            Just(r#"[{"index":1,"id":"c","function":{"arguments":"{}"}}]"#.to_owned()),
        ]
    }

    /// A JSON object of `keys` (repeats allowed), values from `value`.
    fn object(
        keys: Vec<&'static str>,
        value: impl Strategy<Value = String>,
    ) -> impl Strategy<Value = String> {
        prop::collection::vec((prop::sample::select(keys), value), 0..6).prop_map(|fields| {
            let body: Vec<String> = fields
                .into_iter()
                .map(|(k, v)| format!("{}:{v}", Value::from(k)))
                .collect();
            format!("{{{}}}", body.join(","))
        })
    }

    fn chunk() -> impl Strategy<Value = String> {
        let delta = object(
            vec![
                "role",
                "content",
                "tool_calls",
                "refusal",
                "z",
                "\\u0063ontent",
            ],
            scalar(),
        );
        let delta_or_scalar = prop_oneof![delta, scalar()];
        let choice = object(
            vec!["index", "delta", "finish_reason", "logprobs", "delta"],
            delta_or_scalar,
        );
        let choices = prop_oneof![
            prop::collection::vec(choice, 0..3).prop_map(|c| format!("[{}]", c.join(","))),
            scalar(),
        ];
        let usage = prop_oneof![
            object(vec!["prompt_tokens", "total_tokens", "details"], scalar()),
            scalar(),
        ];
        let value = prop_oneof![choices, usage, scalar()];
        object(
            vec![
                "id", "object", "created", "model", "choices", "usage", "x", "choices",
            ],
            value,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn a_chunk_reads_as_the_flattened_derive_read_it(text in chunk()) {
            let ours = serde_json::from_str::<ChatChunk>(&text);
            let reference = serde_json::from_str::<RefChunk>(&text);
            prop_assert_eq!(ours.is_ok(), reference.is_ok(), "{}: {:?} / {:?}", text, ours.as_ref().err(), reference.as_ref().err());
            if let (Ok(ours), Ok(reference)) = (ours, reference) {
                prop_assert_eq!(serde_json::to_value(ours).unwrap(), serde_json::to_value(reference).unwrap());
            }
        }
    }

    #[test]
    fn unknown_fields_and_escaped_keys_are_kept() {
        let chunk: ChatChunk = serde_json::from_str(
            r#"{"choices":[{"delta":{"\u0063ontent":"hi","x":1}}],"zz":[1],"zz":2}"#,
        )
        .unwrap();
        assert_eq!(chunk.object, "chat.completion.chunk");
        assert_eq!(chunk.choices[0].delta.content.as_deref(), Some("hi"));
        assert_eq!(chunk.choices[0].delta.extra["x"], json!(1));
        assert_eq!(
            chunk.extra["zz"],
            json!(2),
            "the last of an unknown key twice"
        );
        assert!(serde_json::from_str::<ChatChunk>(r#"{"id":"a","id":"b"}"#).is_err());
        assert!(serde_json::from_str::<ChatChunk>("[]").is_err());
    }
}
