//! A stack built from a TOML config in front of mock servers.

use llm_fallback::mock::MockServer;
use llm_fallback::{ChatError, ChatRequest, ChatResponse, Config, Message, Stack};
use tower::ServiceExt;

/// The stack of `toml` (providers `a` and `b` on `server`, OpenAI-compatible,
/// keys `ka` and `kb`), with `extra` appended to the config.
pub fn stack(server: &MockServer, extra: &str) -> Stack {
    let toml = format!(
        r#"
        [providers.a]
        kind = "openai"
        base_url = "{url}"
        api_key_env = "KEY_A"
        [providers.b]
        kind = "openai"
        base_url = "{url}"
        api_key_env = "KEY_B"
        [providers.claude]
        kind = "anthropic"
        base_url = "{anthropic}"
        api_key_env = "KEY_A"
        {extra}
        "#,
        url = server.base_url(),
        anthropic = server.anthropic_base_url(),
    );
    let config = Config::from_toml_str(&toml).unwrap_or_else(|e| panic!("valid config:\n{e}"));
    Stack::builder()
        .config(config)
        .env(|var| match var {
            "KEY_A" => Some("ka".into()),
            "KEY_B" => Some("kb".into()),
            _ => None,
        })
        .build()
        .unwrap_or_else(|e| panic!("the config builds:\n{e}"))
}

/// No retries, no breaker: each test counts exactly the calls it causes.
pub const PLAIN: &str = r#"
    [retry]
    max_retries = 0
    [cooldown]
    enabled = false
"#;

pub async fn call(stack: &Stack, model: &str) -> Result<ChatResponse, ChatError> {
    let request = ChatRequest::new(model, [Message::user("hi")]);
    stack.service().oneshot(request).await
}
