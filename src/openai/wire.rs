//! OpenAI's wire format: the request as is, `chat.completion` bodies, and
//! `chat.completion.chunk` events ending with `data: [DONE]`.

use std::collections::VecDeque;

use serde_json::Value;

use crate::error::{ChatError, ErrorKind};
use crate::response::{ChatChunk, ChatCompletion};
use crate::transport::error;
use crate::transport::sse::{Decode, Decoded};
use crate::transport::Wire;
use crate::ChatRequest;

/// The OpenAI chat-completions format, shared by the OpenAI and Azure clients.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct OpenAiWire;

impl Wire for OpenAiWire {
    type Events = OpenAiEvents;

    fn encode(&self, request: &ChatRequest) -> Result<Vec<u8>, ChatError> {
        serde_json::to_vec(request).map_err(|e| {
            ChatError::new(
                ErrorKind::BadRequest,
                format!("cannot encode the request: {e}"),
            )
        })
    }

    fn completion(&self, body: Value) -> Result<ChatCompletion, String> {
        if !body.get("choices").is_some_and(Value::is_array) {
            return Err("not a chat completion".to_owned());
        }
        serde_json::from_value(body).map_err(|e| format!("not a chat completion ({e})"))
    }

    fn events(&self) -> OpenAiEvents {
        OpenAiEvents
    }
}

/// Reads OpenAI stream events.
///
/// - `data: [DONE]` ends the stream.
/// - `{"error": {...}}` (or an `event: error`) is classified like an error body.
/// - An event that is not a valid chunk is malformed.
#[derive(Debug)]
pub(crate) struct OpenAiEvents;

impl Decode for OpenAiEvents {
    const END: &'static str = "[DONE]";

    fn decode(&mut self, event: &str, data: &str, out: &mut VecDeque<Decoded>) {
        let data = data.trim();
        if data.is_empty() {
            return;
        }
        if data == "[DONE]" {
            out.push_back(Decoded::Done);
            return;
        }
        let Ok(value) = serde_json::from_str::<Value>(data) else {
            out.push_back(Decoded::Malformed);
            return;
        };
        if event == "error" || value.get("error").is_some_and(|e| !e.is_null()) {
            let wrapped;
            let value = if value.get("error").is_some() {
                &value
            } else {
                wrapped = serde_json::json!({ "error": value });
                &wrapped
            };
            // The key is scrubbed by the stream reader.
            if let Some(e) = error::from_json(value, None) {
                out.push_back(Decoded::Error(e));
            }
            return;
        }
        out.push_back(match serde_json::from_value::<ChatChunk>(value) {
            Ok(chunk) => Decoded::Chunk(chunk),
            Err(_) => Decoded::Malformed,
        });
    }
}
