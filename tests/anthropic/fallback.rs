//! Cross-vendor fallback: an OpenAI-compatible provider fails, Anthropic
//! answers, and the caller sees OpenAI's shapes, through `Providers` and
//! through the HTTP server.

use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::StreamExt;
use llm_fallback::chat::ChatFuture;
use llm_fallback::mock::{MockServer, ServerReply};
use llm_fallback::providers::openai::OpenAi;
use llm_fallback::server::{Server, MODEL_HEADER};
use llm_fallback::{ChatError, ChatRequest, ChatResponse, ErrorKind, Message, Providers};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tower::{Service, ServiceExt};

use crate::{client, CLAUDE};

const GPT: &str = "gpt-4o";
const PRIMARY: &str = "openai/gpt-4o";
const SECONDARY: &str = "anthropic/claude-3-5-sonnet-20240620";

/// A hand-written fallback (the fallback layer is built elsewhere): tries
/// the alias `smart`'s candidates in order while errors are fallback-able.
#[derive(Clone)]
struct TinyFallback {
    providers: Providers,
    candidates: Arc<[&'static str]>,
}

impl Service<ChatRequest> for TinyFallback {
    type Response = ChatResponse;
    type Error = ChatError;
    type Future = ChatFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), ChatError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: ChatRequest) -> ChatFuture {
        let this = self.clone();
        ChatFuture::new(async move {
            let mut last = None;
            for model in this.candidates.iter() {
                match this
                    .providers
                    .clone()
                    .oneshot(request.clone().with_model(*model))
                    .await
                {
                    Err(e) if e.kind().is_fallbackable() => last = Some(e),
                    result => return result,
                }
            }
            Err(last.expect("at least one candidate"))
        })
    }
}

struct Setup {
    openai: MockServer,
    anthropic: MockServer,
    stack: TinyFallback,
}

async fn setup(candidates: [&'static str; 2]) -> Setup {
    let openai = MockServer::start().await;
    let anthropic = MockServer::start().await;
    let gpt = OpenAi::builder()
        .base_url(openai.base_url())
        .api_key("sk-openai")
        .build()
        .unwrap();
    let providers = Providers::builder()
        .provider("openai", gpt)
        .provider("anthropic", client(&anthropic))
        .build()
        .unwrap();
    let stack = TinyFallback {
        providers,
        candidates: Arc::from(candidates),
    };
    Setup {
        openai,
        anthropic,
        stack,
    }
}

fn request(stream: bool) -> ChatRequest {
    ChatRequest::new(
        "smart",
        [Message::system("Be brief."), Message::user("What is Rust?")],
    )
    .with_stream(stream)
    .with_extra("max_tokens", json!(200))
    .with_extra("seed", json!(1))
}

#[tokio::test]
async fn a_failing_openai_provider_falls_back_to_anthropic_with_an_openai_completion() {
    let s = setup([PRIMARY, SECONDARY]).await;
    s.openai.always(GPT, ServerReply::status(503));
    s.anthropic
        .always(CLAUDE, ServerReply::text("A systems language."));

    let response = s.stack.clone().oneshot(request(false)).await.unwrap();
    assert_eq!(response.model(), SECONDARY);
    let completion = serde_json::to_value(response.into_completion().unwrap()).unwrap();
    assert_eq!(completion["object"], "chat.completion");
    assert_eq!(
        completion["choices"],
        json!([{"index": 0, "finish_reason": "stop",
            "message": {"role": "assistant", "content": "A systems language."}}])
    );
    assert_eq!(
        completion["usage"],
        json!({"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8})
    );

    assert_eq!(s.openai.called_models(), [GPT]);
    assert_eq!(
        s.anthropic.calls()[0].body,
        json!({"model": CLAUDE, "max_tokens": 200, "system": "Be brief.",
            "messages": [{"role": "user", "content": "What is Rust?"}]})
    );
}

#[tokio::test]
async fn a_failing_openai_stream_falls_back_to_an_anthropic_stream_of_openai_chunks() {
    let s = setup([PRIMARY, SECONDARY]).await;
    // An in-band error before any content: an ordinary error, so fallback applies.
    s.openai.always(
        GPT,
        ServerReply::text("x").error_event_after(0, "server_error", "boom"),
    );
    s.anthropic
        .always(CLAUDE, ServerReply::text("A systems language."));

    let response = s.stack.clone().oneshot(request(true)).await.unwrap();
    assert_eq!(response.model(), SECONDARY);
    let chunks: Vec<_> = response.into_stream().unwrap().collect().await;
    let chunks: Vec<Value> = chunks
        .into_iter()
        .map(|c| serde_json::to_value(c.unwrap()).unwrap())
        .collect();
    assert!(chunks
        .iter()
        .all(|c| c["object"] == "chat.completion.chunk"));
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "A systems language.");
    let n = chunks.len();
    assert_eq!(chunks[n - 2]["choices"][0]["finish_reason"], "stop");
    assert_eq!(chunks[n - 1]["usage"]["completion_tokens"], 3);
    assert_eq!(s.openai.call_count(GPT), 1);
    assert_eq!(s.anthropic.calls()[0].body["stream"], true);
}

#[tokio::test]
async fn an_overloaded_anthropic_falls_back_to_openai() {
    let s = setup([SECONDARY, PRIMARY]).await;
    s.anthropic.always(CLAUDE, ServerReply::status(529));
    let response = s.stack.clone().oneshot(request(false)).await.unwrap();
    assert_eq!(response.model(), PRIMARY);
    assert_eq!(s.anthropic.call_count(CLAUDE), 1);

    // The same for an overloaded error event before the stream's content.
    s.anthropic.always(
        CLAUDE,
        ServerReply::text("x").error_event_after(0, "overloaded_error", "Overloaded"),
    );
    let response = s.stack.clone().oneshot(request(true)).await.unwrap();
    assert_eq!(response.model(), PRIMARY);
    assert_eq!(s.anthropic.call_count(CLAUDE), 2);

    // A bad request is not fallback-able: the caller sees Anthropic's reason.
    s.anthropic.always(CLAUDE, ServerReply::status(400));
    let e = s.stack.clone().oneshot(request(false)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BadRequest);
    assert_eq!(e.model(), Some(SECONDARY));
}

/// The server over a real socket; returns its base URL.
async fn serve(stack: TinyFallback) -> String {
    let router = Server::builder(stack)
        .route("smart", [PRIMARY, SECONDARY])
        .build()
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}/v1/chat/completions")
}

#[tokio::test]
async fn through_the_http_server_the_caller_gets_openai_json_and_sse() {
    let s = setup([PRIMARY, SECONDARY]).await;
    s.openai.always(GPT, ServerReply::status(503));
    s.anthropic
        .always(CLAUDE, ServerReply::text("A systems language."));
    let url = serve(s.stack.clone()).await;
    let http = reqwest::Client::new();
    let body =
        json!({"model": "smart", "messages": [{"role": "user", "content": "What is Rust?"}]});

    let response = http.post(&url).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()[MODEL_HEADER], SECONDARY);
    let completion: Value = response.json().await.unwrap();
    assert_eq!(completion["object"], "chat.completion");
    assert_eq!(completion["model"], SECONDARY);
    assert_eq!(
        completion["choices"][0]["message"]["content"],
        "A systems language."
    );

    let mut body = body;
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let response = http.post(&url).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()[MODEL_HEADER], SECONDARY);
    let sse = response.text().await.unwrap();
    let events: Vec<&str> = sse
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .collect();
    assert_eq!(events.last(), Some(&"[DONE]"), "{sse}");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    assert!(chunks
        .iter()
        .all(|c| c["object"] == "chat.completion.chunk" && c["model"] == SECONDARY));
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "A systems language.");
    assert_eq!(chunks.last().unwrap()["usage"]["total_tokens"], 6);
    // The caller's stream_options has no Anthropic equivalent: not sent.
    assert_eq!(s.anthropic.calls()[1].body.get("stream_options"), None);
}
