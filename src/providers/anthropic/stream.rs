//! Anthropic Messages stream events to OpenAI `chat.completion.chunk`s.

use std::collections::{HashMap, VecDeque};

use serde_json::{Map, Value};

use super::response::{finish_reason, unix_now, usage};
use crate::chat::streaming::MAX_TOOL_CALLS;
use crate::chat::{
    ChatChunk, ChatError, ChunkChoice, Delta, ErrorKind, FunctionCallDelta, Role, ToolCallDelta,
};
use crate::providers::transport::error;
use crate::providers::transport::sse::{Decode, Decoded};

/// Reads one Anthropic stream.
///
/// | event | chunks |
/// |---|---|
/// | `message_start` | the role preamble (`{"role": "assistant", "content": ""}`) |
/// | `content_block_start` of a `tool_use` | a tool-call delta with its index, id and name |
/// | `content_block_delta` `text_delta` | a content delta |
/// | `content_block_delta` `input_json_delta` | a tool-call delta with an arguments fragment |
/// | `message_delta` with a stop reason | a finish chunk, then a usage chunk (`choices: []`) |
/// | `message_stop` | the end |
/// | `error` | the error, classified like an error body |
/// | `ping`, `content_block_stop`, thinking blocks, unknown events | nothing |
///
/// An event of a delivering type (or unnamed) that cannot be read (not
/// JSON, no `type`, a text delta without text, a tool fragment for an
/// unknown block, usage counts that are not counts) is malformed: a fault of
/// the stream, since it may have carried content.
#[derive(Debug)]
pub(crate) struct AnthropicEvents {
    id: String,
    model: String,
    created: u64,
    /// Anthropic's usage fields so far: `message_start` has the input side,
    /// `message_delta` the output count.
    usage: Map<String, Value>,
    /// Content block index to OpenAI tool-call index.
    tools: HashMap<u64, u32>,
}

impl AnthropicEvents {
    pub(crate) fn new() -> Self {
        AnthropicEvents {
            id: String::new(),
            model: String::new(),
            created: unix_now(),
            usage: Map::new(),
            tools: HashMap::new(),
        }
    }

    fn chunk(&self, delta: Delta, finish: Option<String>) -> ChatChunk {
        ChatChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk".to_owned(),
            created: self.created,
            model: self.model.clone(),
            choices: vec![ChunkChoice {
                index: 0,
                delta,
                finish_reason: finish,
                extra: Map::new(),
            }],
            usage: None,
            extra: Map::new(),
        }
    }

    fn text(&self, text: &str) -> Option<Decoded> {
        let delta = Delta {
            content: Some(text.to_owned()),
            ..Default::default()
        };
        (!text.is_empty()).then(|| Decoded::Chunk(self.chunk(delta, None).into()))
    }

    fn tool(&self, call: ToolCallDelta) -> Decoded {
        let delta = Delta {
            tool_calls: Some(vec![call]),
            ..Default::default()
        };
        Decoded::Chunk(self.chunk(delta, None).into())
    }

    fn merge_usage(&mut self, usage: &Value) {
        /// Usage fields kept: Anthropic sends a handful; a provider sending
        /// new names in every event must not grow the map without end.
        const MAX_FIELDS: usize = 32;
        if let Value::Object(fields) = usage {
            for (name, value) in fields.iter().filter(|(_, v)| !v.is_null()) {
                if self.usage.len() < MAX_FIELDS || self.usage.contains_key(name) {
                    self.usage.insert(name.clone(), value.clone());
                }
            }
        }
    }

    fn message_start(&mut self, value: &Value) -> Decoded {
        let message = &value["message"];
        if !message.is_object() || !valid_usage(&message["usage"]) {
            return Decoded::Malformed;
        }
        self.id = message["id"].as_str().unwrap_or_default().to_owned();
        self.model = message["model"].as_str().unwrap_or_default().to_owned();
        self.merge_usage(&message["usage"]);
        let delta = Delta {
            role: Some(Role::Assistant),
            content: Some(String::new()),
            ..Default::default()
        };
        Decoded::Chunk(self.chunk(delta, None).into())
    }

    fn block_start(&mut self, value: &Value) -> Option<Decoded> {
        let block = &value["content_block"];
        match block.get("type").and_then(Value::as_str) {
            None => Some(Decoded::Malformed),
            Some("text") => match block.get("text") {
                None | Some(Value::Null) => None,
                Some(Value::String(text)) => self.text(text),
                Some(_) => Some(Decoded::Malformed),
            },
            Some("tool_use") => {
                let (Some(index), Some(id), Some(name)) = (
                    value["index"].as_u64(),
                    block["id"].as_str(),
                    block["name"].as_str(),
                ) else {
                    return Some(Decoded::Malformed);
                };
                let tool = self.tools.len() as u32;
                if tool >= MAX_TOOL_CALLS || self.tools.contains_key(&index) {
                    return Some(Decoded::Malformed);
                }
                self.tools.insert(index, tool);
                // The input arrives in fragments; a non-empty one here is whole.
                let arguments = match &block["input"] {
                    Value::Object(input) if !input.is_empty() => block["input"].to_string(),
                    _ => String::new(),
                };
                Some(self.tool(ToolCallDelta {
                    index: tool,
                    id: Some(id.to_owned()),
                    kind: Some("function".to_owned()),
                    function: Some(FunctionCallDelta {
                        name: Some(name.to_owned()),
                        arguments: Some(arguments),
                    }),
                }))
            }
            // Thinking and server-tool blocks have no OpenAI equivalent.
            Some(_) => None,
        }
    }

    fn block_delta(&self, value: &Value) -> Option<Decoded> {
        let delta = &value["delta"];
        match delta.get("type").and_then(Value::as_str) {
            None => Some(Decoded::Malformed),
            Some("text_delta") => match delta.get("text").and_then(Value::as_str) {
                Some(text) => self.text(text),
                None => Some(Decoded::Malformed),
            },
            Some("input_json_delta") => {
                let fragment = delta.get("partial_json").and_then(Value::as_str);
                let index = value["index"].as_u64();
                let (Some(fragment), Some(tool)) =
                    (fragment, index.and_then(|i| self.tools.get(&i)))
                else {
                    return Some(Decoded::Malformed);
                };
                (!fragment.is_empty()).then(|| {
                    self.tool(ToolCallDelta {
                        index: *tool,
                        function: Some(FunctionCallDelta {
                            name: None,
                            arguments: Some(fragment.to_owned()),
                        }),
                        ..Default::default()
                    })
                })
            }
            // Thinking, signature and citation deltas are not delivered.
            Some(_) => None,
        }
    }

    fn message_delta(&mut self, value: &Value, out: &mut VecDeque<Decoded>) {
        if !valid_usage(&value["usage"]) {
            out.push_back(Decoded::Malformed);
            return;
        }
        self.merge_usage(&value["usage"]);
        let stop = match value["delta"].get("stop_reason") {
            None | Some(Value::Null) => return,
            Some(Value::String(stop)) => stop,
            Some(_) => {
                out.push_back(Decoded::Malformed);
                return;
            }
        };
        out.push_back(Decoded::Chunk(
            self.chunk(Delta::default(), Some(finish_reason(stop)))
                .into(),
        ));
        let mut last = self.chunk(Delta::default(), None);
        last.choices.clear();
        last.usage = Some(usage(&Value::Object(self.usage.clone())));
        out.push_back(Decoded::Chunk(last.into()));
    }
}

/// The event types whose events may carry content the client delivers (an
/// unnamed event may be any of them). Events of other types (`ping`,
/// `content_block_stop`, types added later) are skipped even when their data
/// cannot be read: they carry nothing the caller would see.
const DELIVERED: &[&str] = &[
    "",
    "message",
    "message_start",
    "content_block_start",
    "content_block_delta",
    "message_delta",
    "message_stop",
    "error",
];

/// Whether `usage` is absent or an object whose counts are counts.
fn valid_usage(usage: &Value) -> bool {
    const COUNTS: &[&str] = &[
        "input_tokens",
        "output_tokens",
        "cache_read_input_tokens",
        "cache_creation_input_tokens",
    ];
    match usage {
        Value::Null => true,
        Value::Object(fields) => COUNTS.iter().all(|name| match fields.get(*name) {
            None | Some(Value::Null) => true,
            Some(count) => count.is_u64(),
        }),
        _ => false,
    }
}

impl Decode for AnthropicEvents {
    const END: &'static str = "message_stop";

    fn decode(&mut self, event: &str, data: &str, out: &mut VecDeque<Decoded>) {
        let data = data.trim();
        if data.is_empty() {
            return;
        }
        let Ok(value) = serde_json::from_str::<Value>(data) else {
            if DELIVERED.contains(&event) {
                out.push_back(Decoded::Malformed);
            }
            return;
        };
        let kind = match value.get("type") {
            None => event,
            Some(Value::String(kind)) => kind.as_str(),
            Some(_) => "",
        };
        let decoded = match kind {
            "message_start" => Some(self.message_start(&value)),
            "content_block_start" => self.block_start(&value),
            "content_block_delta" => self.block_delta(&value),
            "message_delta" => {
                self.message_delta(&value, out);
                None
            }
            "message_stop" => Some(Decoded::Done),
            "error" => Some(Decoded::Error(
                // The key is scrubbed by the stream reader.
                error::from_json(&value, None).unwrap_or_else(|| {
                    ChatError::new(ErrorKind::Server, "the provider reported an error")
                }),
            )),
            "" | "message" => Some(Decoded::Malformed),
            // `ping`, `content_block_stop`, and event types added later,
            // which Anthropic asks clients to ignore.
            _ => None,
        };
        out.extend(decoded);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(events: &[(&str, &str)]) -> Vec<Decoded> {
        let mut decoder = AnthropicEvents::new();
        let mut out = VecDeque::new();
        for (event, data) in events {
            decoder.decode(event, data, &mut out);
        }
        out.into_iter().collect()
    }

    #[test]
    fn unknown_events_and_blocks_are_ignored_but_broken_ones_are_malformed() {
        let out = decode(&[
            ("future_event", r#"{"type": "future_event"}"#),
            (
                "content_block_start",
                r#"{"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}}"#,
            ),
            (
                "content_block_delta",
                r#"{"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "hm"}}"#,
            ),
            ("ping", ""),
        ]);
        assert!(out.is_empty(), "{out:?}");
        let out = decode(&[
            (
                "content_block_delta",
                r#"{"type": "content_block_delta", "index": 3, "delta": {"type": "input_json_delta", "partial_json": "{"}}"#,
            ),
            ("", r#"{"no": "type"}"#),
            ("content_block_delta", "{not json"),
        ]);
        assert!(
            matches!(
                out[..],
                [Decoded::Malformed, Decoded::Malformed, Decoded::Malformed]
            ),
            "{out:?}"
        );
    }

    #[test]
    fn usage_fields_from_the_stream_are_bounded() {
        let mut decoder = AnthropicEvents::new();
        let mut out = VecDeque::new();
        for i in 0..1000 {
            let delta = serde_json::json!({"type": "message_delta", "delta": {},
                "usage": {format!("field_{i}"): i, "output_tokens": i}});
            decoder.decode("message_delta", &delta.to_string(), &mut out);
        }
        assert!(out.is_empty(), "no stop reason, no chunk");
        assert!(decoder.usage.len() <= 32);
        assert_eq!(
            decoder.usage["output_tokens"], 999,
            "known fields still update"
        );
    }

    #[test]
    fn the_event_name_stands_in_for_a_missing_type_and_errors_default_to_server() {
        let out = decode(&[("message_stop", "{}"), ("error", r#"{"message": "?"}"#)]);
        assert!(matches!(out[0], Decoded::Done), "{out:?}");
        match &out[1] {
            Decoded::Error(e) => assert_eq!(e.kind(), ErrorKind::Server),
            other => panic!("{other:?}"),
        }
    }
}
