//! The chat-completions request every layer sees, in OpenAI's shape.

use std::fmt;
use std::sync::Arc;

use http::Extensions;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use tokio::time::Instant;

/// An OpenAI chat-completions request.
///
/// `model`, `messages` and `stream` are typed; every other field (`temperature`,
/// `tools`, `response_format`, fields a provider added last week ...) is kept
/// as JSON in [`extra`](Self::extra) and written back untouched.
///
/// Cloning is O(1) in prompt size: the messages and the extra fields sit behind
/// [`Arc`]s and are copied only when a clone is modified (copy on write). Retry
/// and fallback layers clone the request for every attempt, so this matters.
///
/// Per-request metadata travels in [`extensions`](Self::extensions): the
/// deadline stamped by an outer [`Timeout`](crate::Deadline), the shared attempt
/// log, a sticky routing key.
#[derive(Clone, Default)]
pub struct ChatRequest {
    model: String,
    messages: Arc<Vec<Message>>,
    prepended: Option<Arc<[Message]>>,
    stream: Option<bool>,
    extra: Arc<Map<String, Value>>,
    // Behind an Arc so that the clone per attempt costs no allocation; layers
    // rarely write to it after the outermost one has.
    extensions: Arc<Extensions>,
}

impl ChatRequest {
    /// A request for `model` with the given conversation.
    pub fn new(model: impl Into<String>, messages: impl Into<Vec<Message>>) -> Self {
        ChatRequest {
            model: model.into(),
            messages: Arc::new(messages.into()),
            ..Default::default()
        }
    }

    /// Parses a request from JSON bytes (the body of `POST /v1/chat/completions`).
    pub fn from_json(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// The model id, `provider/model` or an alias.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// Replaces the model id.
    pub fn set_model(&mut self, model: impl Into<String>) {
        self.model = model.into();
    }

    /// Builder form of [`set_model`](Self::set_model).
    pub fn with_model(mut self, model: impl Into<String>) -> Self {
        self.set_model(model);
        self
    }

    /// The caller's messages, without any prepended by
    /// [`PrependMessages`](crate) for the called model.
    pub fn messages(&self) -> &[Message] {
        &self.messages
    }

    /// Mutable access to the caller's messages. Copies them first if the
    /// request shares them with a clone.
    pub fn messages_mut(&mut self) -> &mut Vec<Message> {
        Arc::make_mut(&mut self.messages)
    }

    /// The messages placed before the caller's for the model being called.
    pub fn prepended(&self) -> &[Message] {
        self.prepended.as_deref().unwrap_or(&[])
    }

    /// Sets (replaces, never appends to) the prepended messages. Replacing is
    /// what keeps prepending idempotent across retries and fallbacks.
    pub fn set_prepended(&mut self, messages: Option<Arc<[Message]>>) {
        self.prepended = messages;
    }

    /// Every message the provider receives: the prepended ones, then the caller's.
    pub fn all_messages(&self) -> impl Iterator<Item = &Message> + '_ {
        self.prepended().iter().chain(self.messages.iter())
    }

    /// Whether the caller asked for a streamed (SSE) answer.
    pub fn is_stream(&self) -> bool {
        self.stream.unwrap_or(false)
    }

    /// Asks for a streamed or a complete answer.
    pub fn set_stream(&mut self, stream: bool) {
        self.stream = Some(stream);
    }

    /// Builder form of [`set_stream`](Self::set_stream).
    pub fn with_stream(mut self, stream: bool) -> Self {
        self.set_stream(stream);
        self
    }

    /// Every field other than `model`, `messages` and `stream`, as sent.
    pub fn extra(&self) -> &Map<String, Value> {
        &self.extra
    }

    /// Mutable access to the other fields (copied first if shared with a clone).
    pub fn extra_mut(&mut self) -> &mut Map<String, Value> {
        Arc::make_mut(&mut self.extra)
    }

    /// Sets one other field, e.g. `temperature`.
    pub fn with_extra(mut self, key: impl Into<String>, value: Value) -> Self {
        self.extra_mut().insert(key.into(), value);
        self
    }

    /// Per-request metadata.
    pub fn extensions(&self) -> &Extensions {
        &self.extensions
    }

    /// Mutable per-request metadata.
    pub fn extensions_mut(&mut self) -> &mut Extensions {
        Arc::make_mut(&mut self.extensions)
    }

    /// The deadline of the whole call, if an outer layer stamped one.
    pub fn deadline(&self) -> Option<Instant> {
        self.extensions.get::<Deadline>().map(|d| d.0)
    }

    /// Stamps a deadline; an earlier one already present is kept, so an inner
    /// budget can never extend an outer one.
    pub fn set_deadline(&mut self, deadline: Instant) {
        match self.extensions.get::<Deadline>() {
            Some(existing) if existing.0 <= deadline => {}
            _ => {
                self.extensions_mut().insert(Deadline(deadline));
            }
        }
    }
}

impl fmt::Debug for ChatRequest {
    // Message content is user data: keep it out of logs that print requests.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChatRequest")
            .field("model", &self.model)
            .field("messages", &self.messages.len())
            .field("prepended", &self.prepended().len())
            .field("stream", &self.stream)
            .field("extra_fields", &self.extra.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The deadline of the whole call, stamped into a request's extensions by an
/// outer `Timeout`; inner layers never wait past it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Deadline(pub Instant);

#[derive(Serialize)]
struct RequestOut<'a> {
    model: &'a str,
    messages: AllMessages<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream: Option<bool>,
    #[serde(flatten)]
    extra: &'a Map<String, Value>,
}

struct AllMessages<'a>(&'a ChatRequest);

impl Serialize for AllMessages<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.all_messages())
    }
}

impl Serialize for ChatRequest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        RequestOut {
            model: &self.model,
            messages: AllMessages(self),
            stream: self.stream,
            extra: &self.extra,
        }
        .serialize(serializer)
    }
}

#[derive(Deserialize)]
struct RequestIn {
    model: String,
    messages: Vec<Message>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

impl<'de> Deserialize<'de> for ChatRequest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = RequestIn::deserialize(deserializer)?;
        Ok(ChatRequest {
            model: raw.model,
            messages: Arc::new(raw.messages),
            prepended: None,
            stream: raw.stream,
            extra: Arc::new(raw.extra),
            extensions: Arc::default(),
        })
    }
}

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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Content {
    /// Plain text.
    Text(String),
    /// Multi-part content.
    Parts(Vec<ContentPart>),
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
