//! The stack as part of an existing axum app: your own routes and
//! middleware, an OpenAI-compatible endpoint under `/llm`, and a handler of
//! yours that calls the stack directly.
//!
//! ```text
//! cargo run --example axum
//! curl -s localhost:3000/                                   # your route
//! curl -s localhost:3000/summarize -d 'a long text'         # your handler, using the stack
//! curl -s localhost:3000/llm/v1/chat/completions -H 'content-type: application/json' \
//!   -d '{"model": "fast", "messages": [{"role": "user", "content": "hi"}]}'
//! ```
//!
//! Two scripted providers stand in for real ones here (Azure rate limited,
//! OpenAI healthy); with real keys, drop the `.provider(..)` lines and
//! declare `base_url`/`endpoint` and `api_key_env` in the config instead.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use llm_fallback::mock::{MockProvider, MockReply};
use llm_fallback::server::{self, shutdown_signal};
use llm_fallback::{ChatRequest, Config, ErrorKind, Message, Stack};
use tower::ServiceExt;

const CONFIG: &str = r#"{
    "providers": {
        "azure": { "kind": "azure", "endpoint": "https://my-resource.openai.azure.com" },
        "openai": { "kind": "openai" }
    },
    "routes": { "fast": ["azure/gpt-4o-mini", "openai/gpt-4o-mini"] },
    "model_messages": [{ "role": "system", "content": "Answer in one sentence." }],
    "retry": { "max_retries": { "default": 1, "models": { "azure/gpt-4o-mini": 0 } } },
    "timeout": { "total": "30s", "attempt": "10s" }
}"#;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let azure = MockProvider::new();
    azure.always("gpt-4o-mini", MockReply::error(ErrorKind::RateLimited));
    let openai = MockProvider::new();
    openai.always(
        "gpt-4o-mini",
        MockReply::text("Here is the gist, from OpenAI."),
    );

    let stack = Stack::builder()
        .config(Config::from_json_str(CONFIG)?)
        .provider("azure", azure)
        .provider("openai", openai)
        .build()?;

    // The OpenAI-compatible router, mounted under /llm next to your routes;
    // your middleware wraps it like everything else.
    let llm = stack.server().build()?;
    let app = Router::new()
        .route("/", get(|| async { "my app\n" }))
        .route("/summarize", post(summarize))
        .with_state(stack)
        .nest("/llm", llm)
        .layer(middleware::from_fn(app_header));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("listening on http://{}", listener.local_addr()?);
    server::serve(listener, app, shutdown_signal(), Duration::from_secs(10)).await;
    Ok(())
}

/// A handler of your own that uses the stack as a plain service.
async fn summarize(State(stack): State<Stack>, text: String) -> Response {
    let request = ChatRequest::new("fast", [Message::user(format!("Summarize: {text}"))]);
    match stack.oneshot(request).await {
        Ok(response) => {
            let answer = response.text().unwrap_or_default();
            format!("{answer} (served by {})\n", response.model()).into_response()
        }
        Err(e) => (StatusCode::BAD_GATEWAY, format!("{e}\n")).into_response(),
    }
}

/// Middleware of your own, applied to your routes and the LLM endpoint alike.
async fn app_header(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    response
        .headers_mut()
        .insert("x-served-by", HeaderValue::from_static("my-app"));
    response
}
