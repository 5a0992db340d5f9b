//! Assembling a completion from stream chunks, for
//! [`ChatStream::collect_completion`](crate::chat::ChatStream::collect_completion).

use serde_json::{Map, Value};

use crate::chat::chunk::ChatChunk;
use crate::chat::completion::{ChatCompletion, Choice};
use crate::chat::message::{Content, FunctionCall, Message, ToolCall};

/// Adds `chunk` to `out`; the caller has checked its indexes
/// (`facts::check_indexes`), so the vectors stay small.
pub(crate) fn merge_chunk(out: &mut ChatCompletion, chunk: ChatChunk) {
    if out.id.is_empty() {
        out.id = chunk.id;
        out.created = chunk.created;
    }
    if !chunk.model.is_empty() {
        out.model = chunk.model;
    }
    if chunk.usage.is_some() {
        out.usage = chunk.usage;
    }
    for c in chunk.choices {
        let idx = c.index as usize;
        while out.choices.len() <= idx {
            out.choices.push(Choice {
                index: out.choices.len() as u32,
                message: Message {
                    content: None,
                    ..Message::assistant("")
                },
                finish_reason: None,
                extra: Map::new(),
            });
        }
        let choice = &mut out.choices[idx];
        if let Some(text) = c.delta.content {
            match &mut choice.message.content {
                Some(Content::Text(current)) => current.push_str(&text),
                None => choice.message.content = Some(Content::Text(text)),
                Some(Content::Parts(_)) => {
                    let mut current = choice.message.text();
                    current.push_str(&text);
                    choice.message.content = Some(Content::Text(current));
                }
            }
        }
        if let Some(refusal) = c.delta.refusal {
            let entry = choice
                .message
                .extra
                .entry("refusal")
                .or_insert_with(|| Value::String(String::new()));
            if let Value::String(s) = entry {
                s.push_str(&refusal);
            }
        }
        for d in c.delta.tool_calls.unwrap_or_default() {
            let calls = choice.message.tool_calls.get_or_insert_with(Vec::new);
            let i = d.index as usize;
            while calls.len() <= i {
                calls.push(ToolCall {
                    id: String::new(),
                    kind: "function".into(),
                    function: FunctionCall {
                        name: String::new(),
                        arguments: String::new(),
                    },
                    extra: Map::new(),
                });
            }
            let call = &mut calls[i];
            if let Some(id) = d.id {
                call.id = id;
            }
            if let Some(f) = d.function {
                if let Some(name) = f.name {
                    call.function.name.push_str(&name);
                }
                if let Some(args) = f.arguments {
                    call.function.arguments.push_str(&args);
                }
            }
        }
        if c.finish_reason.is_some() {
            choice.finish_reason = c.finish_reason;
        }
    }
}
