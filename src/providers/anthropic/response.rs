//! Anthropic `message` objects to OpenAI `chat.completion`s: content,
//! tool calls, stop reasons and usage.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use crate::chat::{ChatCompletion, Choice, Content, FunctionCall, Message, Role, ToolCall, Usage};

/// Translates a 2xx body, or says what is wrong with it.
pub(super) fn completion(body: Value) -> Result<ChatCompletion, String> {
    let Some(blocks) = body["content"].as_array() else {
        return Err("not an Anthropic message".to_owned());
    };
    // Real messages always say their type: `{"content": []}` is not one.
    if body.get("type").is_none_or(|t| t != "message") {
        return Err("not an Anthropic message".to_owned());
    }
    let mut text = String::new();
    let mut calls = Vec::new();
    for block in blocks {
        match block["type"].as_str() {
            Some("text") => text.push_str(block["text"].as_str().unwrap_or_default()),
            Some("tool_use") => calls.push(tool_call(block)?),
            other => tracing::debug!(
                block = other.unwrap_or("?"),
                "dropping a content block with no OpenAI equivalent"
            ),
        }
    }
    let message = Message {
        role: Role::Assistant,
        // OpenAI's shape: `null` content for a turn that only calls tools.
        content: (!text.is_empty() || calls.is_empty()).then_some(Content::Text(text)),
        name: None,
        tool_calls: (!calls.is_empty()).then_some(calls),
        tool_call_id: None,
        extra: Map::new(),
    };
    Ok(ChatCompletion {
        id: body["id"].as_str().unwrap_or_default().to_owned(),
        object: "chat.completion".to_owned(),
        created: unix_now(),
        model: body["model"].as_str().unwrap_or_default().to_owned(),
        choices: vec![Choice {
            index: 0,
            message,
            finish_reason: body["stop_reason"].as_str().map(finish_reason),
            extra: Map::new(),
        }],
        usage: body.get("usage").filter(|u| u.is_object()).map(usage),
        extra: Map::new(),
    })
}

/// A `tool_use` block as an OpenAI tool call; its input re-serialized as the
/// arguments string.
fn tool_call(block: &Value) -> Result<ToolCall, String> {
    let (Some(id), Some(name)) = (block["id"].as_str(), block["name"].as_str()) else {
        return Err("a tool_use block without an id or a name".to_owned());
    };
    let arguments = match block.get("input") {
        Some(input) if !input.is_null() => input.to_string(),
        _ => "{}".to_owned(),
    };
    Ok(ToolCall {
        id: id.to_owned(),
        kind: "function".to_owned(),
        function: FunctionCall {
            name: name.to_owned(),
            arguments,
        },
        extra: Map::new(),
    })
}

/// OpenAI's name for an Anthropic stop reason: `end_turn` and
/// `stop_sequence` are `stop`, `max_tokens` is `length`, `tool_use` is
/// `tool_calls`, `refusal` is `content_filter`; others are passed on.
pub(super) fn finish_reason(stop_reason: &str) -> String {
    match stop_reason {
        "end_turn" | "stop_sequence" => "stop",
        "max_tokens" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        other => other,
    }
    .to_owned()
}

/// Anthropic's usage in OpenAI's shape.
///
/// Anthropic counts cached prompt tokens apart from `input_tokens`; OpenAI's
/// `prompt_tokens` includes them. So `prompt_tokens` is input plus cache
/// reads plus cache writes, `prompt_tokens_details.cached_tokens` the cache
/// reads, and Anthropic's `cache_read_input_tokens` and
/// `cache_creation_input_tokens` are kept as extra fields when present.
pub(super) fn usage(anthropic: &Value) -> Usage {
    let count = |name: &str| anthropic.get(name).and_then(Value::as_u64);
    let input = count("input_tokens").unwrap_or(0);
    let output = count("output_tokens").unwrap_or(0);
    let read = count("cache_read_input_tokens");
    let written = count("cache_creation_input_tokens");
    // Numbers from the wire: a sum must not overflow.
    let prompt = input
        .saturating_add(read.unwrap_or(0))
        .saturating_add(written.unwrap_or(0));
    let mut extra = Map::new();
    if read.is_some() || written.is_some() {
        extra.insert(
            "prompt_tokens_details".into(),
            json!({ "cached_tokens": read.unwrap_or(0) }),
        );
        if let Some(read) = read {
            extra.insert("cache_read_input_tokens".into(), json!(read));
        }
        if let Some(written) = written {
            extra.insert("cache_creation_input_tokens".into(), json!(written));
        }
    }
    Usage {
        prompt_tokens: prompt,
        completion_tokens: output,
        total_tokens: prompt.saturating_add(output),
        extra,
    }
}

/// Unix seconds for `created`: Anthropic's objects carry no timestamp.
pub(super) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
