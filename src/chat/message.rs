//! The messages of a conversation, in OpenAI's shape: roles, text and
//! multi-part content, tool calls.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::chat::extra_fields::Present;

/// Who wrote a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions from the application.
    System,
    /// Instructions from the developer (OpenAI's newer name for system).
    Developer,
    /// The end user.
    User,
    /// The model.
    Assistant,
    /// A tool's result.
    Tool,
    /// A function's result (OpenAI's deprecated form of `tool`).
    Function,
}

impl Role {
    /// The role as written on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::Developer => "developer",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
            Role::Function => "function",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One message of a conversation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Message {
    /// Who wrote it.
    pub role: Role,
    /// Text or multi-part content; `None` for an assistant turn that only calls tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Content>,
    /// Optional participant name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Tool calls made by an assistant turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
    /// The call a `tool` message answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// Any other field (`refusal`, `audio`, ...), kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A message as read, before its required `role` is checked: read in one
/// pass, without serde's `flatten` (which buffers the whole object first;
/// every request's messages are read, see `extra_fields`).
#[derive(Default)]
struct MessageIn {
    role: Present<Role>,
    content: Option<Content>,
    name: Option<String>,
    tool_calls: Option<Vec<ToolCall>>,
    tool_call_id: Option<String>,
    extra: Map<String, Value>,
}

crate::chat::extra_fields::deserialize_with_extra!(MessageIn, MessageIn::default(), {
    "role" => role,
    "content" => content,
    "name" => name,
    "tool_calls" => tool_calls,
    "tool_call_id" => tool_call_id,
});

impl<'de> Deserialize<'de> for Message {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let m = MessageIn::deserialize(deserializer)?;
        Ok(Message {
            role: m.role.required("role")?,
            content: m.content,
            name: m.name,
            tool_calls: m.tool_calls,
            tool_call_id: m.tool_call_id,
            extra: m.extra,
        })
    }
}

impl Message {
    /// A message with text content.
    pub fn new(role: Role, text: impl Into<String>) -> Self {
        Message {
            role,
            content: Some(Content::Text(text.into())),
            name: None,
            tool_calls: None,
            tool_call_id: None,
            extra: Map::new(),
        }
    }

    /// A system message.
    pub fn system(text: impl Into<String>) -> Self {
        Self::new(Role::System, text)
    }

    /// A developer message.
    pub fn developer(text: impl Into<String>) -> Self {
        Self::new(Role::Developer, text)
    }

    /// A user message.
    pub fn user(text: impl Into<String>) -> Self {
        Self::new(Role::User, text)
    }

    /// An assistant message.
    pub fn assistant(text: impl Into<String>) -> Self {
        Self::new(Role::Assistant, text)
    }

    /// A tool result answering `tool_call_id`.
    pub fn tool(tool_call_id: impl Into<String>, text: impl Into<String>) -> Self {
        Message {
            tool_call_id: Some(tool_call_id.into()),
            ..Self::new(Role::Tool, text)
        }
    }

    /// The text of the message: the string content, or its text parts joined.
    pub fn text(&self) -> String {
        match &self.content {
            None => String::new(),
            Some(Content::Text(text)) => text.clone(),
            Some(Content::Parts(parts)) => parts
                .iter()
                .filter_map(|p| match p {
                    ContentPart::Text(t) => Some(t.text.as_str()),
                    _ => None,
                })
                .collect(),
        }
    }
}

/// The content of a message: a string, or a list of parts (text, images ...).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Content {
    /// Plain text.
    Text(String),
    /// Multi-part content.
    Parts(Vec<ContentPart>),
}

/// A string or a list of parts, told apart by the JSON's own type, so the
/// text is read straight into its `String` (an untagged derive buffers it
/// first).
impl<'de> Deserialize<'de> for Content {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ContentVisitor;

        impl<'de> serde::de::Visitor<'de> for ContentVisitor {
            type Value = Content;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a list of content parts")
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Content, E> {
                Ok(Content::Text(v.to_owned()))
            }

            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Content, E> {
                Ok(Content::Text(v))
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Content, A::Error> {
                let mut parts = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
                while let Some(part) = seq.next_element()? {
                    parts.push(part);
                }
                Ok(Content::Parts(parts))
            }
        }

        deserializer.deserialize_any(ContentVisitor)
    }
}

/// One part of multi-part content.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ContentPart {
    /// `{"type": "text", "text": ...}`
    Text(TextPart),
    /// `{"type": "image_url", "image_url": {"url": ..., "detail": ...}}`
    Image(ImagePart),
    /// Any other part (`input_audio`, `file`, ...), kept as sent.
    Other(Map<String, Value>),
}

/// A text part.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TextPart {
    #[serde(rename = "type")]
    kind: TextTag,
    /// The text.
    pub text: String,
    /// Other fields (e.g. `cache_control`), kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl TextPart {
    /// A text part.
    pub fn new(text: impl Into<String>) -> Self {
        TextPart {
            kind: TextTag::Text,
            text: text.into(),
            extra: Map::new(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
enum TextTag {
    #[serde(rename = "text")]
    Text,
}

/// An image part.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImagePart {
    #[serde(rename = "type")]
    kind: ImageTag,
    /// Where the image is.
    pub image_url: ImageUrl,
    /// Other fields, kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ImagePart {
    /// An image part for a URL or a `data:` URL.
    pub fn new(url: impl Into<String>) -> Self {
        ImagePart {
            kind: ImageTag::ImageUrl,
            image_url: ImageUrl {
                url: url.into(),
                detail: None,
                extra: Map::new(),
            },
            extra: Map::new(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
enum ImageTag {
    #[serde(rename = "image_url")]
    ImageUrl,
}

/// An image reference: an `https:` URL or a base64 `data:` URL.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImageUrl {
    /// The URL.
    pub url: String,
    /// `low`, `high` or `auto`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Other fields, kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A tool call made by the model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The call's id, echoed by the `tool` message that answers it.
    pub id: String,
    /// Always `function` today.
    #[serde(rename = "type", default = "function_type")]
    pub kind: String,
    /// The function called.
    pub function: FunctionCall,
    /// Other fields, kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn function_type() -> String {
    "function".to_owned()
}

/// The function a tool call invokes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FunctionCall {
    /// The function's name.
    pub name: String,
    /// Its arguments, a JSON document as a string.
    #[serde(default)]
    pub arguments: String,
}

#[cfg(test)]
mod read_tests {
    //! A message read in one pass exactly as the derived, flattened (and
    //! untagged) reading did: same successes, same values, same failures.

    use proptest::prelude::*;
    use serde::{Deserialize, Serialize};
    use serde_json::{json, Map, Value};

    use super::{ContentPart, Message, Role, ToolCall};

    #[derive(Serialize, Deserialize)]
    struct RefMessage {
        role: Role,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        content: Option<RefContent>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tool_calls: Option<Vec<ToolCall>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tool_call_id: Option<String>,
        #[serde(flatten)]
        extra: Map<String, Value>,
    }

    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    enum RefContent {
        Text(String),
        Parts(Vec<ContentPart>),
    }

    fn scalar() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("null".to_owned()),
            Just("true".to_owned()),
            any::<i64>().prop_map(|n| n.to_string()),
            (-1e3f64..1e3).prop_map(|f| Value::from(f).to_string()),
            "[a-z\"\\\\é]{0,6}".prop_map(|s| Value::from(s).to_string()),
            Just(r#""user""#.to_owned()),
            Just(r#""tool""#.to_owned()),
            Just(r#""\u0075ser""#.to_owned()),
            Just("[]".to_owned()),
            Just("{}".to_owned()),
            Just(r#"[{"type":"text","text":"hi","cache_control":{}}]"#.to_owned()),
            Just(r#"[{"type":"image_url","image_url":{"url":"u"}},{"type":"file"}]"#.to_owned()),
            Just(r#"[1]"#.to_owned()),
            Just(r#"[{"id":"c","function":{"name":"f","arguments":"{}"}}]"#.to_owned()),
            Just(r#"[{"id":"c","type":"function","function":{"name":"f"},"x":1}]"#.to_owned()),
        ]
    }

    fn message() -> impl Strategy<Value = String> {
        let keys = vec![
            "role",
            "content",
            "name",
            "tool_calls",
            "tool_call_id",
            "refusal",
            "\\u0063ontent",
            "role",
        ];
        // Half the objects open with a good role, so that most of those
        // read, and the values of the other fields decide.
        let fields = prop::collection::vec((prop::sample::select(keys), scalar()), 0..5);
        (any::<bool>(), fields).prop_map(|(role, fields)| {
            let mut body: Vec<String> = fields
                .into_iter()
                .filter(|(k, _)| !role || *k != "role")
                .map(|(k, v)| format!("\"{k}\":{v}"))
                .collect();
            if role {
                body.insert(0, r#""role":"assistant""#.to_owned());
            }
            format!("{{{}}}", body.join(","))
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn a_message_reads_as_the_flattened_derive_read_it(text in message()) {
            let ours = serde_json::from_str::<Message>(&text);
            let reference = serde_json::from_str::<RefMessage>(&text);
            prop_assert_eq!(ours.is_ok(), reference.is_ok(), "{}: {:?} / {:?}", text, ours.as_ref().err(), reference.as_ref().err());
            if let (Ok(ours), Ok(reference)) = (ours, reference) {
                prop_assert_eq!(serde_json::to_value(ours).unwrap(), serde_json::to_value(reference).unwrap());
            }
        }
    }

    #[test]
    fn a_message_keeps_unknown_fields_and_needs_a_role() {
        let m: Message = serde_json::from_str(
            r#"{"role":"user","\u0063ontent":[{"type":"text","text":"hi"}],"x":[1],"x":2}"#,
        )
        .unwrap();
        assert_eq!(m.text(), "hi");
        assert_eq!(m.extra["x"], json!(2), "the last of an unknown key twice");
        let missing = serde_json::from_str::<Message>(r#"{"content":"hi"}"#).unwrap_err();
        assert!(
            missing.to_string().contains("missing field `role`"),
            "{missing}"
        );
        assert!(serde_json::from_str::<Message>(r#"{"role":null}"#).is_err());
        assert!(serde_json::from_str::<Message>(r#"{"role":"user","role":"user"}"#).is_err());
        assert!(serde_json::from_str::<Message>(r#"{"role":"user","content":5}"#).is_err());
        assert!(serde_json::from_str::<Message>(r#"["user"]"#).is_err());
        // From a `Value` too (configs and the Anthropic translation read so).
        let m: Message =
            serde_json::from_value(json!({"role": "system", "content": "be brief"})).unwrap();
        assert_eq!(m, Message::system("be brief"));
    }
}
