//! A complete answer: the `chat.completion` object and its token usage.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::chat::extra_fields::Present;
use crate::chat::message::Message;

/// A `chat.completion` object.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
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
#[derive(Clone, Debug, PartialEq, Serialize)]
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

// Read in one pass, without serde's `flatten` (see `extra_fields`): a
// complete answer is read on every non-streaming call.
crate::chat::extra_fields::deserialize_with_extra!(ChatCompletion, ChatCompletion { object: completion_object(), ..Default::default() }, {
    "id" => id,
    "object" => object,
    "created" => created,
    "model" => model,
    "choices" => choices,
    "usage" => usage,
});

/// A choice as read, before its required `message` is checked.
#[derive(Default)]
struct ChoiceIn {
    index: u32,
    message: Present<Message>,
    finish_reason: Option<String>,
    extra: Map<String, Value>,
}

crate::chat::extra_fields::deserialize_with_extra!(ChoiceIn, ChoiceIn::default(), {
    "index" => index,
    "message" => message,
    "finish_reason" => finish_reason,
});

impl<'de> Deserialize<'de> for Choice {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let c = ChoiceIn::deserialize(deserializer)?;
        Ok(Choice {
            index: c.index,
            message: c.message.required("message")?,
            finish_reason: c.finish_reason,
            extra: c.extra,
        })
    }
}

crate::chat::extra_fields::deserialize_with_extra!(Usage, Usage::default(), {
    "prompt_tokens" => prompt_tokens,
    "completion_tokens" => completion_tokens,
    "total_tokens" => total_tokens,
});

#[cfg(test)]
mod read_tests {
    //! A completion read in one pass exactly as the derived, flattened
    //! reading did: same successes, same values, same failures.

    use proptest::prelude::*;
    use serde::{Deserialize, Serialize};
    use serde_json::{Map, Value};

    use super::{completion_object, ChatCompletion, Usage};
    use crate::chat::message::Message;

    #[derive(Serialize, Deserialize)]
    struct RefCompletion {
        #[serde(default)]
        id: String,
        #[serde(default = "completion_object")]
        object: String,
        #[serde(default)]
        created: u64,
        #[serde(default)]
        model: String,
        #[serde(default)]
        choices: Vec<RefChoice>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        usage: Option<Usage>,
        #[serde(flatten)]
        extra: Map<String, Value>,
    }

    #[derive(Serialize, Deserialize)]
    struct RefChoice {
        #[serde(default)]
        index: u32,
        message: Message,
        #[serde(default)]
        finish_reason: Option<String>,
        #[serde(flatten)]
        extra: Map<String, Value>,
    }

    fn scalar() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("null".to_owned()),
            Just("false".to_owned()),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<u32>().prop_map(|n| n.to_string()),
            "[a-z\"\\\\é]{0,6}".prop_map(|s| Value::from(s).to_string()),
            Just("[]".to_owned()),
            Just("{}".to_owned()),
            Just(r#"{"role":"assistant","content":"hi"}"#.to_owned()),
            Just(r#"{"role":"assistant","content":null,"tool_calls":[{"id":"c","function":{"name":"f"}}]}"#.to_owned()),
            Just(r#"{"content":"no role"}"#.to_owned()),
            Just(r#"{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4,"x":{}}"#.to_owned()),
        ]
    }

    fn object(
        keys: Vec<&'static str>,
        value: impl Strategy<Value = String>,
    ) -> impl Strategy<Value = String> {
        prop::collection::vec((prop::sample::select(keys), value), 0..6).prop_map(|fields| {
            let body: Vec<String> = fields
                .into_iter()
                .map(|(k, v)| format!("\"{k}\":{v}"))
                .collect();
            format!("{{{}}}", body.join(","))
        })
    }

    fn completion() -> impl Strategy<Value = String> {
        let choice = object(
            vec!["index", "message", "finish_reason", "logprobs", "message"],
            scalar(),
        );
        let choices = prop_oneof![
            prop::collection::vec(choice, 0..3).prop_map(|c| format!("[{}]", c.join(","))),
            scalar(),
        ];
        let value = prop_oneof![choices, scalar()];
        object(
            vec![
                "id",
                "object",
                "created",
                "model",
                "choices",
                "usage",
                "system_fingerprint",
                "\\u0063hoices",
            ],
            value,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn a_completion_reads_as_the_flattened_derive_read_it(text in completion()) {
            let ours = serde_json::from_str::<ChatCompletion>(&text);
            let reference = serde_json::from_str::<RefCompletion>(&text);
            prop_assert_eq!(ours.is_ok(), reference.is_ok(), "{}: {:?} / {:?}", text, ours.as_ref().err(), reference.as_ref().err());
            if let (Ok(ours), Ok(reference)) = (ours, reference) {
                prop_assert_eq!(serde_json::to_value(ours).unwrap(), serde_json::to_value(reference).unwrap());
            }
        }
    }

    #[test]
    fn a_choice_needs_its_message() {
        let e = serde_json::from_str::<ChatCompletion>(r#"{"choices":[{"index":0}]}"#).unwrap_err();
        assert!(e.to_string().contains("missing field `message`"), "{e}");
        let c: ChatCompletion = serde_json::from_str(
            r#"{"choices":[{"message":{"role":"assistant","content":"hi"},"logprobs":null}],"service_tier":"x"}"#,
        )
        .unwrap();
        assert_eq!(c.object, "chat.completion");
        assert_eq!(c.choices[0].message.text(), "hi");
        assert_eq!(c.choices[0].extra["logprobs"], Value::Null);
        assert_eq!(c.extra["service_tier"], "x");
    }
}
