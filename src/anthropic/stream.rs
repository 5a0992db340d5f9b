//! Anthropic Messages stream events to OpenAI `chat.completion.chunk`s.

use std::collections::{HashMap, VecDeque};

use serde_json::{Map, Value};

use super::response::{finish_reason, unix_now, usage};
use crate::error::{ChatError, ErrorKind};
use crate::request::Role;
use crate::response::{ChatChunk, ChunkChoice, Delta, FunctionCallDelta, ToolCallDelta};
use crate::transport::error;
use crate::transport::sse::{Decode, Decoded};

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
        (!text.is_empty()).then(|| Decoded::Chunk(self.chunk(delta, None)))
    }

    fn tool(&self, call: ToolCallDelta) -> Decoded {
        let delta = Delta {
            tool_calls: Some(vec![call]),
            ..Default::default()
        };
        Decoded::Chunk(self.chunk(delta, None))
    }

    fn merge_usage(&mut self, usage: &Value) {
        if let Value::Object(fields) = usage {
            for (name, value) in fields.iter().filter(|(_, v)| !v.is_null()) {
                self.usage.insert(name.clone(), value.clone());
            }
        }
    }

    fn message_start(&mut self, value: &Value) -> Decoded {
        let message = &value["message"];
        self.id = message["id"].as_str().unwrap_or_default().to_owned();
        self.model = message["model"].as_str().unwrap_or_default().to_owned();
        self.merge_usage(&message["usage"]);
        let delta = Delta {
            role: Some(Role::Assistant),
            content: Some(String::new()),
            ..Default::default()
        };
        Decoded::Chunk(self.chunk(delta, None))
    }

    fn block_start(&mut self, value: &Value) -> Option<Decoded> {
        let block = &value["content_block"];
        match block["type"].as_str() {
            Some("text") => self.text(block["text"].as_str().unwrap_or_default()),
            Some("tool_use") => {
                let (Some(index), Some(id), Some(name)) = (
                    value["index"].as_u64(),
                    block["id"].as_str(),
                    block["name"].as_str(),
                ) else {
                    return Some(Decoded::Malformed);
                };
                let tool = self.tools.len() as u32;
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
            _ => None,
        }
    }

    fn block_delta(&self, value: &Value) -> Option<Decoded> {
        let delta = &value["delta"];
        match delta["type"].as_str() {
            Some("text_delta") => self.text(delta["text"].as_str().unwrap_or_default()),
            Some("input_json_delta") => {
                let fragment = delta["partial_json"].as_str().unwrap_or_default();
                let index = value["index"].as_u64();
                let Some(tool) = index.and_then(|i| self.tools.get(&i)) else {
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
            _ => None,
        }
    }

    fn message_delta(&mut self, value: &Value, out: &mut VecDeque<Decoded>) {
        self.merge_usage(&value["usage"]);
        let Some(stop) = value["delta"]["stop_reason"].as_str() else {
            return;
        };
        out.push_back(Decoded::Chunk(
            self.chunk(Delta::default(), Some(finish_reason(stop))),
        ));
        let mut last = self.chunk(Delta::default(), None);
        last.choices.clear();
        last.usage = Some(usage(&Value::Object(self.usage.clone())));
        out.push_back(Decoded::Chunk(last));
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
            out.push_back(Decoded::Malformed);
            return;
        };
        let kind = value["type"].as_str().unwrap_or(event);
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
            "" => Some(Decoded::Malformed),
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
    fn the_event_name_stands_in_for_a_missing_type_and_errors_default_to_server() {
        let out = decode(&[("message_stop", "{}"), ("error", r#"{"message": "?"}"#)]);
        assert!(matches!(out[0], Decoded::Done), "{out:?}");
        match &out[1] {
            Decoded::Error(e) => assert_eq!(e.kind(), ErrorKind::Server),
            other => panic!("{other:?}"),
        }
    }
}
