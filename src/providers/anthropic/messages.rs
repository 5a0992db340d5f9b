//! OpenAI messages to Anthropic's `system` and alternating turns.

use serde_json::{json, Map, Value};

use crate::chat::{ChatError, Content, ContentPart, ErrorKind, ImagePart, Message, Role, ToolCall};

/// A conversation in Anthropic's shape.
#[derive(Debug)]
pub(super) struct Conversation {
    /// The system prompt: a string, or text blocks when some carry
    /// `cache_control`; `None` without system messages.
    pub(super) system: Option<Value>,
    /// Alternating `user` / `assistant` turns.
    pub(super) messages: Vec<Value>,
}

struct Turn {
    role: &'static str,
    blocks: Vec<Value>,
}

/// Translates `messages` (prepended ones included, in order).
///
/// - System and developer messages, wherever they are, become `system`.
/// - Consecutive messages of one role are merged into one turn; `tool`
///   messages become `tool_result` blocks of a user turn.
/// - Blank text is left out (Anthropic rejects it); a message left empty is
///   skipped.
/// - A final assistant turn (a prefill) loses its trailing whitespace, which
///   Anthropic rejects.
pub(super) fn conversation<'a>(
    messages: impl Iterator<Item = &'a Message>,
) -> Result<Conversation, ChatError> {
    let mut system = Vec::new();
    let mut turns: Vec<Turn> = Vec::new();
    for (i, message) in messages.enumerate() {
        if message.name.is_some() {
            tracing::debug!(
                message = i,
                "dropping a message name: Anthropic has no equivalent"
            );
        }
        let (role, blocks) = match message.role {
            Role::System | Role::Developer => {
                system.extend(system_blocks(message, i));
                continue;
            }
            Role::User => ("user", content_blocks(message.content.as_ref(), i)?),
            Role::Assistant => ("assistant", assistant_blocks(message, i)?),
            Role::Tool => ("user", vec![tool_result(message, i)?]),
            Role::Function => {
                return Err(bad(format!(
                    "messages[{i}]: role \"function\" has no Anthropic equivalent; use tools"
                )))
            }
        };
        if blocks.is_empty() {
            tracing::debug!(message = i, "skipping an empty message");
        } else if let Some(last) = turns.last_mut().filter(|t| t.role == role) {
            last.blocks.extend(blocks);
        } else {
            turns.push(Turn { role, blocks });
        }
    }
    trim_prefill(&mut turns);
    Ok(Conversation {
        system: render_system(system),
        messages: turns.into_iter().map(render_turn).collect(),
    })
}

fn bad(message: String) -> ChatError {
    ChatError::new(ErrorKind::BadRequest, message)
}

fn text_block(text: &str, extra: &Map<String, Value>) -> Value {
    let mut block = json!({"type": "text", "text": text});
    keep_cache_control(&mut block, extra);
    block
}

/// Anthropic's prompt-caching marker survives translation; other extra
/// fields of a part have no equivalent.
fn keep_cache_control(block: &mut Value, extra: &Map<String, Value>) {
    if let (Some(cache), Value::Object(block)) = (extra.get("cache_control"), block) {
        block.insert("cache_control".to_owned(), cache.clone());
    }
}

fn is_blank(text: &str) -> bool {
    text.trim().is_empty()
}

fn system_blocks(message: &Message, i: usize) -> Vec<Value> {
    match &message.content {
        None => Vec::new(),
        Some(Content::Text(text)) if is_blank(text) => Vec::new(),
        Some(Content::Text(text)) => vec![text_block(text, &Map::new())],
        Some(Content::Parts(parts)) => parts
            .iter()
            .filter_map(|part| match part {
                ContentPart::Text(t) if is_blank(&t.text) => None,
                ContentPart::Text(t) => Some(text_block(&t.text, &t.extra)),
                _ => {
                    tracing::debug!(message = i, "dropping a non-text part of a system message");
                    None
                }
            })
            .collect(),
    }
}

/// Text and images; parts of other types are passed on as they are, so a
/// caller may send Anthropic's own blocks (`document` ...).
fn content_blocks(content: Option<&Content>, i: usize) -> Result<Vec<Value>, ChatError> {
    match content {
        None => Ok(Vec::new()),
        Some(Content::Text(text)) if is_blank(text) => Ok(Vec::new()),
        Some(Content::Text(text)) => Ok(vec![text_block(text, &Map::new())]),
        Some(Content::Parts(parts)) => {
            let mut blocks = Vec::with_capacity(parts.len());
            for part in parts {
                match part {
                    ContentPart::Text(t) if is_blank(&t.text) => {}
                    ContentPart::Text(t) => blocks.push(text_block(&t.text, &t.extra)),
                    ContentPart::Image(image) => blocks.push(image_block(image, i)?),
                    ContentPart::Other(other) => blocks.push(Value::Object(other.clone())),
                }
            }
            Ok(blocks)
        }
    }
}

/// A base64 `data:` URL becomes a base64 source, an http(s) URL a URL source.
fn image_block(image: &ImagePart, i: usize) -> Result<Value, ChatError> {
    let url = image.image_url.url.trim();
    let source = if let Some(rest) = url.strip_prefix("data:") {
        let Some((meta, data)) = rest.split_once(',') else {
            return Err(bad(format!(
                "messages[{i}]: an image data: URL without data"
            )));
        };
        let Some(media_type) = meta.strip_suffix(";base64") else {
            return Err(bad(format!(
                "messages[{i}]: an image data: URL must be base64-encoded"
            )));
        };
        json!({"type": "base64", "media_type": media_type, "data": data})
    } else if url.starts_with("https://") || url.starts_with("http://") {
        json!({"type": "url", "url": url})
    } else {
        return Err(bad(format!(
            "messages[{i}]: an image URL must be http(s) or a base64 data: URL"
        )));
    };
    let mut block = json!({"type": "image", "source": source});
    keep_cache_control(&mut block, &image.extra);
    Ok(block)
}

fn assistant_blocks(message: &Message, i: usize) -> Result<Vec<Value>, ChatError> {
    let mut blocks = content_blocks(message.content.as_ref(), i)?;
    for call in message.tool_calls.iter().flatten() {
        blocks.push(tool_use(call, i)?);
    }
    Ok(blocks)
}

/// An OpenAI tool call: its arguments string must be a JSON object.
fn tool_use(call: &ToolCall, i: usize) -> Result<Value, ChatError> {
    let arguments = call.function.arguments.trim();
    let input = if arguments.is_empty() {
        json!({})
    } else {
        // serde's message gives line and column, never the content.
        serde_json::from_str::<Value>(arguments).map_err(|e| {
            bad(format!(
                "messages[{i}]: the arguments of tool call {:?} are not valid JSON: {e}",
                call.id
            ))
        })?
    };
    if !input.is_object() {
        return Err(bad(format!(
            "messages[{i}]: the arguments of tool call {:?} are not a JSON object",
            call.id
        )));
    }
    Ok(json!({"type": "tool_use", "id": call.id, "name": call.function.name, "input": input}))
}

fn tool_result(message: &Message, i: usize) -> Result<Value, ChatError> {
    let Some(id) = &message.tool_call_id else {
        return Err(bad(format!(
            "messages[{i}]: a tool message needs a tool_call_id"
        )));
    };
    let mut block = json!({"type": "tool_result", "tool_use_id": id});
    let content = match &message.content {
        Some(Content::Text(text)) if !text.is_empty() => Some(Value::String(text.clone())),
        Some(parts @ Content::Parts(_)) => {
            Some(Value::Array(content_blocks(Some(parts), i)?)).filter(|b| b != &json!([]))
        }
        _ => None,
    };
    if let Some(content) = content {
        block["content"] = content;
    }
    Ok(block)
}

/// Anthropic rejects a final assistant turn ending in whitespace.
fn trim_prefill(turns: &mut Vec<Turn>) {
    let Some(last) = turns.last_mut().filter(|t| t.role == "assistant") else {
        return;
    };
    if let Some(Value::String(text)) = last.blocks.last_mut().and_then(|b| b.get_mut("text")) {
        let trimmed = text.trim_end().len();
        if trimmed < text.len() {
            tracing::debug!("trimming trailing whitespace from the assistant prefill");
            text.truncate(trimmed);
        }
        if text.is_empty() {
            last.blocks.pop();
        }
    }
    if last.blocks.is_empty() {
        turns.pop();
    }
}

/// A single plain text block is sent as a string, as a person would write it.
fn plain_text(blocks: &[Value]) -> Option<&str> {
    match blocks {
        [Value::Object(block)] if block.len() == 2 && block.get("type")? == "text" => {
            block.get("text")?.as_str()
        }
        _ => None,
    }
}

fn render_turn(turn: Turn) -> Value {
    let content = match plain_text(&turn.blocks) {
        Some(text) => Value::String(text.to_owned()),
        None => Value::Array(turn.blocks),
    };
    json!({"role": turn.role, "content": content})
}

/// One string when every block is plain text (joined by blank lines), else
/// the blocks.
fn render_system(blocks: Vec<Value>) -> Option<Value> {
    if blocks.is_empty() {
        return None;
    }
    let texts: Option<Vec<&str>> = blocks
        .iter()
        .map(|b| plain_text(std::slice::from_ref(b)))
        .collect();
    Some(match texts {
        Some(texts) => Value::String(texts.join("\n\n")),
        None => Value::Array(blocks),
    })
}
