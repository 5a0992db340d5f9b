//! OpenAI-shaped requests to the exact JSON Anthropic receives.

use std::sync::Arc;

use llm_fallback::mock::MockServer;
use llm_fallback::providers::anthropic::Anthropic;
use llm_fallback::{ChatRequest, Message};
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::{client, from_json, CLAUDE};

/// Sends every request to one mock server; returns the bodies received.
async fn sent_with(
    client: Anthropic,
    server: &MockServer,
    requests: Vec<ChatRequest>,
) -> Vec<Value> {
    for request in requests {
        client.clone().oneshot(request).await.unwrap();
    }
    server.calls().into_iter().map(|c| c.body).collect()
}

/// `(what, OpenAI messages and parameters, Anthropic fields expected
/// besides model and max_tokens)`.
fn cases() -> Vec<(&'static str, Value, Value)> {
    vec![
        (
            "system and developer messages, wherever they are, become one system prompt",
            json!({"messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "hi"},
                {"role": "developer", "content": "Answer in French."},
            ]}),
            json!({"system": "Be brief.\n\nAnswer in French.",
                "messages": [{"role": "user", "content": "hi"}]}),
        ),
        (
            "consecutive turns of one role are merged; blank messages are skipped",
            json!({"messages": [
                {"role": "user", "content": "a"},
                {"role": "user", "content": "  "},
                {"role": "user", "content": "b"},
                {"role": "assistant", "content": "c"},
                {"role": "assistant", "content": "d"},
                {"role": "user", "content": "e"},
            ]}),
            json!({"messages": [
                {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
                {"role": "assistant", "content": [{"type": "text", "text": "c"}, {"type": "text", "text": "d"}]},
                {"role": "user", "content": "e"},
            ]}),
        ),
        (
            "images: a base64 data URL and an https URL",
            json!({"messages": [{"role": "user", "content": [
                {"type": "text", "text": "What differs?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "high"}},
            ]}]}),
            json!({"messages": [{"role": "user", "content": [
                {"type": "text", "text": "What differs?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
            ]}]}),
        ),
        (
            "cache_control on parts is kept, which makes the system prompt blocks",
            json!({"messages": [
                {"role": "system", "content": [{"type": "text", "text": "A long manual.", "cache_control": {"type": "ephemeral"}}]},
                {"role": "system", "content": "Be kind."},
                {"role": "user", "content": [{"type": "text", "text": "Q", "cache_control": {"type": "ephemeral"}}]},
            ]}),
            json!({"system": [
                    {"type": "text", "text": "A long manual.", "cache_control": {"type": "ephemeral"}},
                    {"type": "text", "text": "Be kind."},
                ],
                "messages": [{"role": "user", "content": [{"type": "text", "text": "Q", "cache_control": {"type": "ephemeral"}}]}]}),
        ),
        (
            "assistant tool calls become tool_use blocks, tool messages tool_result blocks of one user turn",
            json!({"messages": [
                {"role": "user", "content": "Weather in Paris and Rome?"},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}},
                    {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Rome\"}"}},
                ]},
                {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
                {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "21C"}]},
                {"role": "user", "content": "Thanks"},
            ]}),
            json!({"messages": [
                {"role": "user", "content": "Weather in Paris and Rome?"},
                {"role": "assistant", "content": [
                    {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
                    {"type": "tool_use", "id": "call_2", "name": "get_weather", "input": {"city": "Rome"}},
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "call_1", "content": "18C"},
                    {"type": "tool_result", "tool_use_id": "call_2", "content": [{"type": "text", "text": "21C"}]},
                    {"type": "text", "text": "Thanks"},
                ]},
            ]}),
        ),
        (
            "assistant text with a tool call; empty arguments are an empty input",
            json!({"messages": [
                {"role": "user", "content": "Time?"},
                {"role": "assistant", "content": "Let me check.", "name": "bot", "tool_calls": [
                    {"id": "call_9", "type": "function", "function": {"name": "now", "arguments": ""}},
                ]},
                {"role": "tool", "tool_call_id": "call_9", "content": "noon"},
            ]}),
            json!({"messages": [
                {"role": "user", "content": "Time?"},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "Let me check."},
                    {"type": "tool_use", "id": "call_9", "name": "now", "input": {}},
                ]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_9", "content": "noon"}]},
            ]}),
        ),
        (
            "an assistant message last is a prefill, without trailing whitespace",
            json!({"messages": [
                {"role": "user", "content": "Write a haiku"},
                {"role": "assistant", "content": "Autumn leaves \n"},
            ]}),
            json!({"messages": [
                {"role": "user", "content": "Write a haiku"},
                {"role": "assistant", "content": "Autumn leaves"},
            ]}),
        ),
        (
            "tools, required tool choice and no parallel calls",
            json!({"messages": [{"role": "user", "content": "hi"}],
                "tools": [
                    {"type": "function", "function": {"name": "get_weather", "description": "Weather of a city",
                        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}, "strict": true}},
                    {"type": "function", "function": {"name": "now"}},
                ],
                "tool_choice": "required", "parallel_tool_calls": false}),
            json!({"messages": [{"role": "user", "content": "hi"}],
                "tools": [
                    {"name": "get_weather", "description": "Weather of a city",
                        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
                    {"name": "now", "input_schema": {"type": "object", "properties": {}}},
                ],
                "tool_choice": {"type": "any", "disable_parallel_tool_use": true}}),
        ),
        (
            "sampling parameters, stop as a string, user as metadata, stream",
            json!({"messages": [{"role": "user", "content": "hi"}], "max_completion_tokens": 100,
                "temperature": 0.5, "top_p": 0.9, "top_k": 40, "stop": "END", "user": "u-42", "stream": true}),
            json!({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 100,
                "temperature": 0.5, "top_p": 0.9, "top_k": 40, "stop_sequences": ["END"],
                "metadata": {"user_id": "u-42"}, "stream": true}),
        ),
        (
            "max_tokens, stop as a list, a temperature above Anthropic's maximum",
            json!({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 50,
                "stop": ["\n\n", "END"], "temperature": 1.7, "top_p": null}),
            json!({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 50,
                "stop_sequences": ["\n\n", "END"], "temperature": 1.0}),
        ),
        (
            "parameters with no Anthropic equivalent are not sent",
            json!({"messages": [{"role": "user", "content": "hi"}], "n": 1, "seed": 7,
                "presence_penalty": 0.1, "frequency_penalty": 0.2, "logit_bias": {"50256": -100},
                "logprobs": false, "response_format": {"type": "json_object"},
                "stream_options": {"include_usage": true}, "service_tier": "auto"}),
            json!({"messages": [{"role": "user", "content": "hi"}]}),
        ),
    ]
}

#[tokio::test]
async fn every_message_kind_and_parameter_translates_to_the_exact_anthropic_body() {
    let server = MockServer::start().await;
    let cases = cases();
    let requests = cases
        .iter()
        .map(|(_, openai, _)| {
            let mut openai = openai.clone();
            openai["model"] = json!(CLAUDE);
            from_json(openai)
        })
        .collect();
    let bodies = sent_with(client(&server), &server, requests).await;
    assert_eq!(bodies.len(), cases.len());
    for ((what, _, fields), body) in cases.into_iter().zip(bodies) {
        let mut expected = json!({"model": CLAUDE, "max_tokens": 4096});
        for (k, v) in fields.as_object().unwrap() {
            expected[k] = v.clone();
        }
        assert_eq!(body, expected, "{what}");
    }
}

#[tokio::test]
async fn tool_choice_auto_none_and_a_named_function() {
    let server = MockServer::start().await;
    let table = [
        (json!("auto"), json!({"type": "auto"})),
        (json!("none"), json!({"type": "none"})),
        (json!("required"), json!({"type": "any"})),
        (
            json!({"type": "function", "function": {"name": "get_weather"}}),
            json!({"type": "tool", "name": "get_weather"}),
        ),
    ];
    let tools = json!([{"type": "function", "function": {"name": "get_weather"}}]);
    let requests = table
        .iter()
        .map(|(choice, _)| {
            ChatRequest::new(CLAUDE, [Message::user("hi")])
                .with_extra("tools", tools.clone())
                .with_extra("tool_choice", choice.clone())
        })
        .collect();
    let bodies = sent_with(client(&server), &server, requests).await;
    assert_eq!(bodies.len(), table.len());
    for ((choice, expected), body) in table.iter().zip(bodies) {
        assert_eq!(&body["tool_choice"], expected, "tool_choice {choice}");
    }
}

#[tokio::test]
async fn prepended_messages_and_the_default_max_tokens_are_honoured() {
    let server = MockServer::start().await;
    let claude = Anthropic::builder()
        .base_url(server.anthropic_base_url())
        .default_max_tokens(1024)
        .build()
        .unwrap();
    let mut request = ChatRequest::new(CLAUDE, [Message::user("hi")]);
    request.set_prepended(Some(Arc::from(vec![
        Message::system("You are Claude."),
        Message::user("Remember: be terse."),
    ])));
    let bodies = sent_with(claude, &server, vec![request]).await;
    assert_eq!(
        bodies[0],
        json!({"model": CLAUDE, "max_tokens": 1024, "system": "You are Claude.",
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "Remember: be terse."},
            {"type": "text", "text": "hi"},
        ]}]})
    );
}

#[tokio::test]
async fn the_key_version_and_extra_headers_are_sent() {
    let server = MockServer::start().await;
    let claude = Anthropic::builder()
        .base_url(server.anthropic_base_url())
        .api_key("sk-ant-xyz")
        .version("2024-01-01")
        .header("anthropic-beta", "prompt-caching-2024-07-31")
        .build()
        .unwrap();
    assert_eq!(
        claude.url().as_str(),
        format!("{}/v1/messages", server.anthropic_base_url())
    );
    claude.oneshot(crate::hello()).await.unwrap();
    let call = &server.calls()[0];
    assert_eq!(call.path, "/v1/messages");
    assert_eq!(call.header("x-api-key"), Some("sk-ant-xyz"));
    assert_eq!(call.header("anthropic-version"), Some("2024-01-01"));
    assert_eq!(
        call.header("anthropic-beta"),
        Some("prompt-caching-2024-07-31")
    );
    assert_eq!(call.header("authorization"), None);
    assert_eq!(call.header("content-type"), Some("application/json"));
}
