//! The chat-completions request every layer sees, in OpenAI's shape.

use std::fmt;
use std::sync::Arc;

use http::Extensions;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use tokio::time::Instant;

use crate::chat::extra_fields::deserialize_with_extra;
use crate::chat::message::Message;
use crate::chat::raw_body::RawBody;

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
/// deadline stamped by an outer [`Timeout`](crate::chat::Deadline), the shared attempt
/// log, a sticky routing key.
#[derive(Clone, Default)]
pub struct ChatRequest {
    model: String,
    messages: Arc<Vec<Message>>,
    prepended: Option<Arc<[Message]>>,
    stream: Option<bool>,
    extra: Arc<Map<String, Value>>,
    // The client's JSON, while the typed fields above still say what it
    // says (forgotten on any change but `model` and the prepended messages).
    raw: Option<Arc<RawBody>>,
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

    /// Parses the body of `POST /v1/chat/completions` and keeps it, so that
    /// an OpenAI-compatible provider receives the client's own bytes.
    /// `None` when the body does not name a model and list messages
    /// (or names a key twice): the caller reads it another way, for the
    /// exact error.
    #[cfg_attr(not(feature = "server"), allow(dead_code))]
    pub(crate) fn from_body(bytes: bytes::Bytes) -> Option<Result<Self, serde_json::Error>> {
        let raw = RawBody::locate(bytes)?;
        Some(
            serde_json::from_slice(raw.bytes()).map(|mut request: ChatRequest| {
                request.raw = Some(Arc::new(raw));
                request
            }),
        )
    }

    /// The client's body as the provider should receive it (see
    /// [`RawBody::write`]); `None` when the typed encoding must write it.
    #[cfg_attr(not(feature = "openai"), allow(dead_code))]
    pub(crate) fn raw_body(&self, add_usage: bool) -> Option<Result<Vec<u8>, serde_json::Error>> {
        self.raw
            .as_ref()?
            .write(&self.model, self.prepended(), add_usage)
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

    /// The caller's messages, without the [`prepended`](Self::prepended)
    /// ones.
    pub fn messages(&self) -> &[Message] {
        &self.messages
    }

    /// Mutable access to the caller's messages. Copies them first if the
    /// request shares them with a clone.
    pub fn messages_mut(&mut self) -> &mut Vec<Message> {
        self.raw = None;
        Arc::make_mut(&mut self.messages)
    }

    /// The messages placed before the caller's for the model being called
    /// (a layer sets them per model; every provider sends them first). Kept
    /// apart from the caller's so that setting them is O(1) and never
    /// copies or changes the conversation.
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
        if self.stream != Some(stream) {
            self.raw = None;
        }
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
        self.raw = None;
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

/// The request as read, before it is shared behind `Arc`s. Read without
/// serde's `flatten` (see [`deserialize_with_extra`]), which copied each
/// field it did not name into an intermediate tree first.
#[derive(Default)]
struct RequestIn {
    model: String,
    messages: Vec<Message>,
    stream: Option<bool>,
    extra: Map<String, Value>,
}

deserialize_with_extra!(
    RequestIn,
    RequestIn::default(),
    { "model" => model, "messages" => messages, "stream" => stream },
    required: ["model", "messages"]
);

impl<'de> Deserialize<'de> for ChatRequest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = RequestIn::deserialize(deserializer)?;
        Ok(ChatRequest {
            model: raw.model,
            messages: Arc::new(raw.messages),
            prepended: None,
            stream: raw.stream,
            extra: Arc::new(raw.extra),
            raw: None,
            extensions: Arc::default(),
        })
    }
}

#[cfg(test)]
mod read_tests {
    use proptest::prelude::*;
    use serde::Deserialize;
    use serde_json::{Map, Value};

    use super::ChatRequest;
    use crate::chat::Message;

    /// The derived reader `ChatRequest` had, kept as the reference.
    #[derive(Deserialize)]
    struct Derived {
        model: String,
        messages: Vec<Message>,
        #[serde(default)]
        stream: Option<bool>,
        #[serde(flatten)]
        extra: Map<String, Value>,
    }

    fn value() -> impl Strategy<Value = &'static str> {
        prop_oneof![
            Just("null"),
            Just("true"),
            Just("false"),
            Just("256"),
            Just("0.2"),
            Just(r#""gpt-4o""#),
            Just(r#""a\"b""#),
            Just("[]"),
            Just(r#"[{"role":"user","content":"hi"}]"#),
            Just(
                r#"[{"role":"user","content":"hi"},{"role":"assistant","content":null,"tool_calls":[]}]"#
            ),
            Just(r#"[{"content":"no role"}]"#),
            Just(r#"{"include_usage":true}"#),
            Just(r#"[1,{"a":[null]}]"#),
        ]
    }

    fn key() -> impl Strategy<Value = &'static str> {
        prop_oneof![
            Just("model"),
            Just("messages"),
            Just("stream"),
            Just("\\u006dodel"),
            Just("temperature"),
            Just("stream_options"),
            Just("Model"),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn a_request_reads_as_the_derived_reader_read_it(
            members in prop::collection::vec((key(), value()), 0..7),
        ) {
            let text = format!(
                "{{{}}}",
                members.iter().map(|(k, v)| format!(r#""{k}":{v}"#)).collect::<Vec<_>>().join(",")
            );
            let ours = serde_json::from_str::<ChatRequest>(&text);
            let derived = serde_json::from_str::<Derived>(&text);
            match (ours, derived) {
                (Ok(ours), Ok(derived)) => {
                    prop_assert_eq!(ours.model(), derived.model.as_str());
                    prop_assert_eq!(ours.messages(), derived.messages.as_slice());
                    prop_assert_eq!(ours.stream, derived.stream);
                    prop_assert_eq!(ours.extra(), &derived.extra);
                }
                (Err(_), Err(_)) => {}
                (ours, derived) => prop_assert!(
                    false,
                    "{text}: ours {:?}, derived {:?}",
                    ours.map(|_| ()),
                    derived.map(|_| ())
                ),
            }
        }
    }
}
