//! The messages of a conversation, in OpenAI's shape: roles, text and
//! multi-part content, tool calls.

use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

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
///
/// Read by hand rather than derived: the derived reader of a struct with
/// flattened fields and of an untagged enum first copies every value into
/// an intermediate tree, so each message's text was copied twice. This
/// one reads each known field directly and accepts exactly what the derived
/// reader accepted (a property test holds the two together).
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

crate::chat::extra_fields::deserialize_with_extra!(
    Message,
    // `role` is required: this one is always replaced.
    Message {
        role: Role::User,
        content: None,
        name: None,
        tool_calls: None,
        tool_call_id: None,
        extra: Map::new(),
    },
    {
        "role" => role,
        "content" => content,
        "name" => name,
        "tool_calls" => tool_calls,
        "tool_call_id" => tool_call_id,
    },
    required: ["role"]
);

/// Content is a string or a list of parts. Read by hand for the reason
/// given at [`Message`]: the text is copied once, not twice.
impl<'de> Deserialize<'de> for Content {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ContentVisitor;
        impl<'de> Visitor<'de> for ContentVisitor {
            type Value = Content;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a list of content parts")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Content, E> {
                Ok(Content::Text(text.to_owned()))
            }
            fn visit_string<E: de::Error>(self, text: String) -> Result<Content, E> {
                Ok(Content::Text(text))
            }
            fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<Content, E> {
                match std::str::from_utf8(bytes) {
                    Ok(text) => self.visit_str(text),
                    Err(_) => Err(E::invalid_value(de::Unexpected::Bytes(bytes), &self)),
                }
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Content, A::Error> {
                let mut parts = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(16));
                while let Some(part) = seq.next_element::<ContentPart>()? {
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
    use proptest::prelude::*;
    use serde::Deserialize;
    use serde_json::{Map, Value};

    use super::{Content, ContentPart, Message, Role, ToolCall};

    /// The derived readers [`Message`] and [`Content`] had, kept as the
    /// reference the hand-written ones must agree with.
    #[derive(Deserialize)]
    struct Derived {
        role: Role,
        #[serde(default)]
        content: Option<DerivedContent>,
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        tool_calls: Option<Vec<ToolCall>>,
        #[serde(default)]
        tool_call_id: Option<String>,
        #[serde(flatten)]
        extra: Map<String, Value>,
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum DerivedContent {
        Text(String),
        Parts(Vec<ContentPart>),
    }

    impl From<Derived> for Message {
        fn from(d: Derived) -> Message {
            Message {
                role: d.role,
                content: d.content.map(|c| match c {
                    DerivedContent::Text(text) => Content::Text(text),
                    DerivedContent::Parts(parts) => Content::Parts(parts),
                }),
                name: d.name,
                tool_calls: d.tool_calls,
                tool_call_id: d.tool_call_id,
                extra: d.extra,
            }
        }
    }

    /// JSON text of a value a message field might hold, right or wrong.
    fn value() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("null".to_owned()),
            Just("true".to_owned()),
            Just("0".to_owned()),
            Just("-1.5e3".to_owned()),
            Just("18446744073709551616".to_owned()),
            Just(r#""user""#.to_owned()),
            Just(r#""assistant""#.to_owned()),
            Just(r#""tool""#.to_owned()),
            Just(r#""User""#.to_owned()),
            Just(r#""\u0075ser""#.to_owned()),
            Just(r#""a \"quoted\" text\n""#.to_owned()),
            Just(r#""\ud800""#.to_owned()),
            Just(r#"{"type":"text","text":"hi"}"#.to_owned()),
            Just(r#"{"type":"text","text":"hi","cache_control":{"type":"ephemeral"}}"#.to_owned()),
            Just(r#"{"type":"text","text":7}"#.to_owned()),
            Just(
                r#"{"type":"image_url","image_url":{"url":"https://x/y.png","detail":"low"}}"#
                    .to_owned()
            ),
            Just(r#"{"type":"image_url","image_url":"https://x"}"#.to_owned()),
            Just(r#"{"type":"input_audio","input_audio":{"data":"AAAA"}}"#.to_owned()),
            Just(
                r#"{"id":"call_1","type":"function","function":{"name":"f","arguments":"{}"}}"#
                    .to_owned()
            ),
            Just(r#"{"id":"call_2","function":{"name":"g"}}"#.to_owned()),
            Just(r#"{"id":3,"function":{"name":"g"}}"#.to_owned()),
            Just(r#"{"function":["h","[]"],"id":"c"}"#.to_owned()),
            Just("{}".to_owned()),
            Just("[]".to_owned()),
        ];
        leaf.prop_recursive(2, 12, 3, |inner| {
            prop::collection::vec(inner, 0..3).prop_map(|items| format!("[{}]", items.join(",")))
        })
    }

    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("role"),
            Just("content"),
            Just("name"),
            Just("tool_calls"),
            Just("tool_call_id"),
            Just("\\u0072ole"),
            Just("cont\\u0065nt"),
            Just("refusal"),
            Just("audio"),
            Just("Role"),
        ]
        .prop_map(str::to_owned)
    }

    /// A message's JSON: mostly an object of the known and other keys
    /// (some twice), sometimes not an object at all.
    fn message() -> impl Strategy<Value = String> {
        let member = (key(), value()).prop_map(|(k, v)| format!(r#""{k}":{v}"#));
        let role = prop_oneof![
            Just(r#""role":"user""#.to_owned()),
            Just(r#""role":"system""#.to_owned()),
            Just(r#""role":"tool","tool_call_id":"call_1""#.to_owned()),
            Just(String::new()),
        ];
        prop_oneof![
            4 => (role, prop::collection::vec(member, 0..5)).prop_map(|(role, mut members)| {
                if !role.is_empty() {
                    members.insert(0, role);
                }
                format!("{{{}}}", members.join(","))
            }),
            1 => value(),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn a_message_reads_as_the_derived_reader_read_it(text in message()) {
            let ours = serde_json::from_str::<Message>(&text);
            let derived = serde_json::from_str::<Derived>(&text).map(Message::from);
            match (ours, derived) {
                (Ok(ours), Ok(derived)) => prop_assert_eq!(ours, derived),
                (Err(_), Err(_)) => {}
                (ours, derived) => prop_assert!(false, "{text}: ours {ours:?}, derived {:?}", derived.map(|_| ())),
            }
            // Through a JSON tree too (the gateway's slow path reads so).
            if let Ok(tree) = serde_json::from_str::<Value>(&text) {
                let ours = serde_json::from_value::<Message>(tree.clone());
                let derived = serde_json::from_value::<Derived>(tree).map(Message::from);
                match (ours, derived) {
                    (Ok(ours), Ok(derived)) => prop_assert_eq!(ours, derived),
                    (Err(_), Err(_)) => {}
                    (ours, derived) => prop_assert!(false, "{text}: ours {ours:?}, derived {:?}", derived.map(|_| ())),
                }
            }
        }
    }

    #[test]
    fn a_message_is_read_with_its_content_and_other_fields() {
        let text = r#"{"role":"user","content":[{"type":"text","text":"a"},{"type":"input_audio","input_audio":{}}],"refusal":null,"name":"n"}"#;
        let message: Message = serde_json::from_str(text).unwrap();
        assert_eq!(message.role, Role::User);
        assert_eq!(message.name.as_deref(), Some("n"));
        assert_eq!(message.extra.get("refusal"), Some(&Value::Null));
        let Some(Content::Parts(parts)) = &message.content else {
            panic!("parts expected: {message:?}");
        };
        assert!(matches!(parts[0], ContentPart::Text(_)));
        assert!(matches!(parts[1], ContentPart::Other(_)));
        // Refused: twice the same field, no role, content neither text nor parts.
        for bad in [
            r#"{"role":"user","role":"user"}"#,
            r#"{"content":"hi"}"#,
            r#"{"role":"user","content":{"text":"hi"}}"#,
            r#"{"role":"user","content":["hi"]}"#,
            r#"["user","hi"]"#,
        ] {
            assert!(serde_json::from_str::<Message>(bad).is_err(), "{bad}");
        }
    }

    #[cfg(feature = "toml")]
    #[test]
    fn a_message_reads_from_toml_as_the_config_writes_it() {
        let message: Message =
            toml::from_str("role = \"system\"\ncontent = \"Be brief.\"").unwrap();
        assert_eq!(message, Message::system("Be brief."));
    }
}
