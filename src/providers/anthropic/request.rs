//! OpenAI chat-completions requests to Anthropic Messages requests.

use serde_json::{json, Map, Value};

use super::messages::conversation;
use crate::chat::{ChatError, ChatRequest, ErrorKind};

/// The request fields translated; every other one is dropped (and logged).
const TRANSLATED: &[&str] = &[
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "top_k",
    "stop",
    "user",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
];

/// The Messages API body for `request`; `default_max_tokens` when the caller
/// set neither `max_completion_tokens` nor `max_tokens` (Anthropic requires one).
pub(super) fn encode(request: &ChatRequest, default_max_tokens: u32) -> Result<Value, ChatError> {
    let conversation = conversation(request.all_messages())?;
    let extra = request.extra();
    let mut body = Map::new();
    body.insert("model".into(), json!(request.model()));
    body.insert("max_tokens".into(), max_tokens(extra, default_max_tokens)?);
    if let Some(system) = conversation.system {
        body.insert("system".into(), system);
    }
    body.insert("messages".into(), Value::Array(conversation.messages));
    sampling(extra, &mut body)?;
    tools(extra, &mut body)?;
    if request.is_stream() {
        body.insert("stream".into(), Value::Bool(true));
    }
    for name in extra.keys().filter(|k| !TRANSLATED.contains(&k.as_str())) {
        tracing::debug!(
            model = request.model(),
            parameter = name,
            "dropping a parameter Anthropic has no equivalent for"
        );
    }
    Ok(Value::Object(body))
}

fn bad(message: String) -> ChatError {
    ChatError::new(ErrorKind::BadRequest, message)
}

/// A field, `null` counting as absent.
fn field<'a>(extra: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    extra.get(name).filter(|v| !v.is_null())
}

/// `max_completion_tokens` (OpenAI's current name) or `max_tokens`.
fn max_tokens(extra: &Map<String, Value>, default: u32) -> Result<Value, ChatError> {
    for name in ["max_completion_tokens", "max_tokens"] {
        if let Some(value) = field(extra, name) {
            return match value.as_u64().filter(|n| *n > 0) {
                Some(n) => Ok(json!(n)),
                None => Err(bad(format!(
                    "{name} must be a positive integer, got {value}"
                ))),
            };
        }
    }
    Ok(json!(default))
}

fn sampling(extra: &Map<String, Value>, body: &mut Map<String, Value>) -> Result<(), ChatError> {
    if let Some(t) = field(extra, "temperature") {
        // OpenAI allows up to 2, Anthropic up to 1: the hottest it offers.
        let t = match t.as_f64() {
            Some(v) if v > 1.0 => {
                tracing::debug!(
                    temperature = v,
                    "clamping temperature to Anthropic's maximum, 1"
                );
                json!(1.0)
            }
            _ => t.clone(),
        };
        body.insert("temperature".into(), t);
    }
    for name in ["top_p", "top_k"] {
        if let Some(v) = field(extra, name) {
            body.insert(name.into(), v.clone());
        }
    }
    match field(extra, "stop") {
        None => {}
        Some(Value::String(s)) => {
            body.insert("stop_sequences".into(), json!([s]));
        }
        Some(Value::Array(list)) if list.is_empty() => {}
        Some(Value::Array(list)) if list.iter().all(Value::is_string) => {
            body.insert("stop_sequences".into(), Value::Array(list.clone()));
        }
        Some(_) => return Err(bad("stop must be a string or a list of strings".into())),
    }
    match field(extra, "user") {
        Some(Value::String(user)) => {
            body.insert("metadata".into(), json!({ "user_id": user }));
        }
        Some(_) => tracing::debug!("dropping a user that is not a string"),
        None => {}
    }
    Ok(())
}

fn tools(extra: &Map<String, Value>, body: &mut Map<String, Value>) -> Result<(), ChatError> {
    let tools = match field(extra, "tools") {
        None => Vec::new(),
        Some(Value::Array(list)) => list
            .iter()
            .enumerate()
            .map(|(i, t)| tool(i, t))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(bad("tools must be a list".into())),
    };
    let has_tools = !tools.is_empty();
    if has_tools {
        body.insert("tools".into(), Value::Array(tools));
    }
    let mut choice = field(extra, "tool_choice").map(tool_choice).transpose()?;
    if field(extra, "parallel_tool_calls") == Some(&Value::Bool(false)) {
        match &mut choice {
            Some(c) if c["type"] != "none" => c["disable_parallel_tool_use"] = Value::Bool(true),
            None if has_tools => {
                choice = Some(json!({"type": "auto", "disable_parallel_tool_use": true}));
            }
            _ => {}
        }
    }
    if let Some(choice) = choice {
        body.insert("tool_choice".into(), choice);
    }
    Ok(())
}

/// `{"type": "function", "function": {name, description, parameters}}` to
/// `{name, description, input_schema}`; other tools (Anthropic's own
/// types) are passed on as they are.
fn tool(i: usize, tool: &Value) -> Result<Value, ChatError> {
    if tool["type"] != "function" {
        return Ok(tool.clone());
    }
    let function = &tool["function"];
    let Some(name) = function["name"].as_str() else {
        return Err(bad(format!("tools[{i}]: a function tool needs a name")));
    };
    let mut out = json!({ "name": name });
    if let Some(description) = function["description"].as_str() {
        out["description"] = json!(description);
    }
    out["input_schema"] = match function.get("parameters") {
        Some(p) if !p.is_null() => p.clone(),
        // A function without parameters: Anthropic still wants a schema.
        _ => json!({"type": "object", "properties": {}}),
    };
    if let Some(cache) = tool.get("cache_control") {
        out["cache_control"] = cache.clone();
    }
    Ok(out)
}

/// `auto`, `none`, `required` (Anthropic's `any`) or one named function
/// (Anthropic's `tool`).
fn tool_choice(choice: &Value) -> Result<Value, ChatError> {
    match choice {
        Value::String(s) if s == "auto" => Ok(json!({"type": "auto"})),
        Value::String(s) if s == "none" => Ok(json!({"type": "none"})),
        Value::String(s) if s == "required" => Ok(json!({"type": "any"})),
        Value::Object(_) if choice["type"] == "function" => {
            match choice["function"]["name"].as_str() {
                Some(name) => Ok(json!({"type": "tool", "name": name})),
                None => Err(bad("tool_choice: a function choice needs a name".into())),
            }
        }
        other => Err(bad(format!(
            "tool_choice {other} has no Anthropic equivalent"
        ))),
    }
}
