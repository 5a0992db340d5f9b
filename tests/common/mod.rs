//! The whole stack over real sockets, for the streaming acceptance tests:
//! two mock provider servers (one behind the Azure client, one behind the
//! OpenAI client), the canonical layers, and the HTTP server in front.
//!
//! Real time: paused time auto-advances to the next timer whenever the
//! runtime waits on a socket, so a deadline could fire before a request
//! reached the mock (tokio-rs/tokio#4522). A deadline a test wants to see
//! fire is short (a few hundred ms) against a mock silent far longer; every
//! other deadline and wait is generous or scripted.
#![allow(dead_code)]

use std::time::Duration;

use futures_util::StreamExt;
use llm_fallback::chat::ChatChunk;
use llm_fallback::layers::hedge::Hedge;
use llm_fallback::layers::retry::Backoff;
use llm_fallback::layers::timeout::StreamDeadlines;
use llm_fallback::mock::{MockServer, ServerReply};
use llm_fallback::providers::openai::{Azure, OpenAi};
use llm_fallback::server::Server;
use llm_fallback::{
    BoxChatService, ChatError, ChatRequest, ChatResponse, CooldownLayer, Message,
    ProviderFallbackLayer, Providers, RetryLayer, RouteOptions, SharedRng, TimeoutLayer,
};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::time::Instant;
use tower::{ServiceBuilder, ServiceExt};

/// The model requested; the Azure deployment `gpt-4o-mini` on `primary`.
pub const PRIMARY: &str = "azure/gpt-4o-mini";
/// Its fallback; the OpenAI model `gpt-4o` on `backup`.
pub const BACKUP: &str = "openai/gpt-4o";
/// How the servers know them.
pub const PRIMARY_UPSTREAM: &str = "gpt-4o-mini";
pub const BACKUP_UPSTREAM: &str = "gpt-4o";

/// The settings a test varies.
#[derive(Clone, Debug)]
pub struct Setup {
    pub recover: bool,
    pub prefill: bool,
    pub deadlines: StreamDeadlines,
    pub backoff: Backoff,
    pub hedge: Option<Hedge>,
}

/// A deadline that never fires in a test that does not wait for it.
pub const GENEROUS: Duration = Duration::from_secs(30);
/// A deadline a test waits for: short, as it costs real time.
pub const SHORT: Duration = Duration::from_millis(400);

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            recover: false,
            prefill: false,
            deadlines: StreamDeadlines::new()
                .with_headers(GENEROUS)
                .with_first_token(GENEROUS)
                .with_idle(GENEROUS),
            // Retries cost real time: a millisecond, jittered.
            backoff: Backoff::builder().base(ms(1)).build().unwrap(),
            hedge: None,
        }
    }
}

impl Setup {
    pub fn recovering() -> Self {
        Setup {
            recover: true,
            ..Setup::default()
        }
    }

    pub fn recovering_with_prefill() -> Self {
        Setup {
            recover: true,
            prefill: true,
            ..Setup::default()
        }
    }
}

/// The mock providers and the stack in front of them.
pub struct Rig {
    pub primary: MockServer,
    pub backup: MockServer,
    pub stack: BoxChatService,
}

impl Rig {
    pub async fn start(setup: Setup) -> Rig {
        let primary = MockServer::start().await;
        let backup = MockServer::start().await;
        let providers = Providers::builder()
            .provider(
                "azure",
                Azure::builder()
                    .endpoint(primary.endpoint())
                    .api_key("azure-key")
                    .build()
                    .unwrap(),
            )
            .provider(
                "openai",
                OpenAi::builder()
                    .base_url(backup.base_url())
                    .api_key("sk-openai")
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        let cooldown = CooldownLayer::builder().build().unwrap();
        let mut options = RouteOptions::new().recover_streams(setup.recover);
        if setup.prefill {
            options = options.prefill_supported(BACKUP);
        }
        if let Some(hedge) = setup.hedge {
            options = options.hedge(hedge);
        }
        let fallback = ProviderFallbackLayer::builder()
            .group([PRIMARY, BACKUP])
            .health(cooldown.health())
            .options(options);
        let retry = RetryLayer::builder()
            .backoff(setup.backoff)
            .rng(SharedRng::seeded(7))
            .build()
            .unwrap();
        let stack = ServiceBuilder::new()
            .layer(fallback.build().unwrap())
            .layer(cooldown)
            .layer(retry)
            .layer(
                TimeoutLayer::attempt(Duration::from_secs(120))
                    .with_stream_deadlines(setup.deadlines),
            )
            .service(providers);
        Rig {
            primary,
            backup,
            stack: BoxChatService::new(stack),
        }
    }

    /// Calls the stack through the library API.
    pub async fn call(&self, request: ChatRequest) -> Result<ChatResponse, ChatError> {
        self.stack.clone().oneshot(request).await
    }

    /// Serves the stack over HTTP on 127.0.0.1.
    pub async fn http(&self) -> Http {
        let router = Server::builder(self.stack.clone()).build().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let never = std::future::pending::<()>();
        let grace = Duration::from_secs(1);
        tokio::spawn(llm_fallback::server::serve(listener, router, never, grace));
        Http {
            base: format!("http://{addr}"),
            client: reqwest::Client::new(),
        }
    }
}

/// `w00 w01 ... w{n-1} `: one word per chunk with `in_chunks(n)`.
pub fn words(range: std::ops::Range<usize>) -> String {
    range.map(|i| format!("w{i:02} ")).collect()
}

/// An answer of `n` words in `n` chunks.
pub fn answer(n: usize) -> ServerReply {
    ServerReply::text(words(0..n)).in_chunks(n)
}

pub fn request(stream: bool) -> ChatRequest {
    ChatRequest::new(PRIMARY, [Message::user("tell me a long story")]).with_stream(stream)
}

pub fn request_with_usage() -> ChatRequest {
    request(true).with_extra("stream_options", json!({"include_usage": true}))
}

/// Every item of a streamed response.
pub async fn items(response: ChatResponse) -> Vec<Result<ChatChunk, ChatError>> {
    response.into_stream().expect("a stream").collect().await
}

pub fn text(items: &[Result<ChatChunk, ChatError>]) -> String {
    items.iter().flatten().map(ChatChunk::text).collect()
}

pub fn content_chunks(items: &[Result<ChatChunk, ChatError>]) -> usize {
    items.iter().flatten().filter(|c| c.has_content()).count()
}

/// Seconds since `start`, for readable assertions.
pub fn secs(start: Instant, at: Instant) -> f64 {
    at.duration_since(start).as_secs_f64()
}

/// The HTTP server in front of a [`Rig`], and an SSE client.
pub struct Http {
    base: String,
    client: reqwest::Client,
}

/// An answer read over HTTP: status, headers, and each SSE event's data
/// with the time it arrived.
pub struct Reply {
    pub status: reqwest::StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub events: Vec<(Instant, String)>,
    pub body: String,
}

impl Http {
    pub async fn post(&self, body: &Value) -> Reply {
        let mut response = self
            .client
            .post(format!("{}/v1/chat/completions", self.base))
            .json(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let mut body = String::new();
        let mut events = Vec::new();
        let mut pending = String::new();
        while let Some(bytes) = response.chunk().await.expect("the body reads to its end") {
            let now = Instant::now();
            let text = String::from_utf8(bytes.to_vec()).unwrap();
            body.push_str(&text);
            pending.push_str(&text);
            while let Some(end) = pending.find("\n\n") {
                let event: String = pending.drain(..end + 2).collect();
                let data = event
                    .trim_end()
                    .strip_prefix("data: ")
                    .expect("data events");
                events.push((now, data.to_owned()));
            }
        }
        Reply {
            status,
            headers,
            events,
            body,
        }
    }

    pub async fn chat(&self, stream: bool, include_usage: bool) -> Reply {
        let mut body = json!({
            "model": PRIMARY,
            "messages": [{"role": "user", "content": "tell me a long story"}],
            "stream": stream,
        });
        if include_usage {
            body["stream_options"] = json!({"include_usage": true});
        }
        self.post(&body).await
    }
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }

    /// The chunk events (neither `[DONE]` nor an error event).
    pub fn chunks(&self) -> Vec<Value> {
        self.events
            .iter()
            .filter(|(_, e)| e != "[DONE]")
            .map(|(_, e)| serde_json::from_str::<Value>(e).unwrap())
            .filter(|v| v.get("error").is_none())
            .collect()
    }

    pub fn text(&self) -> String {
        self.chunks()
            .iter()
            .flat_map(|c| c["choices"].as_array().cloned().unwrap_or_default())
            .filter_map(|c| c["delta"]["content"].as_str().map(str::to_owned))
            .collect()
    }

    pub fn done(&self) -> bool {
        self.events.last().is_some_and(|(_, e)| e == "[DONE]")
    }

    /// The in-band error event, if the stream ended with one.
    pub fn error(&self) -> Option<Value> {
        let (_, last) = self.events.last()?;
        let value: Value = serde_json::from_str(last).ok()?;
        value.get("error").cloned()
    }

    /// When the `n`th content chunk (from 1) arrived.
    pub fn content_chunk_at(&self, n: usize) -> Instant {
        self.events
            .iter()
            .filter(|(_, e)| e.contains("\"content\":\"w"))
            .nth(n - 1)
            .expect("enough content chunks")
            .0
    }

    pub fn ended_at(&self) -> Instant {
        self.events.last().expect("some event").0
    }
}
