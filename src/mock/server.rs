//! A scripted provider behind a real socket, speaking the OpenAI and
//! Anthropic wire formats.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinSet};

use super::call::ServerCall;
use super::random::RandomReplies;
use super::reply::{ReplyKind, ServerReply};
use super::script::Shared;
use super::wire::{self, Body, BoxError};

/// An HTTP server on `127.0.0.1` (a free port) that answers
/// `POST .../chat/completions` like an OpenAI-compatible provider, with
/// behaviour scripted per model — for the crate's tests and yours.
///
/// It also serves Azure's path, `/openai/deployments/{deployment}/chat/completions`,
/// taking the deployment as the model, and Anthropic's `POST /v1/messages`
/// (base URL [`anthropic_base_url`](Self::anthropic_base_url)), answering in
/// Anthropic's shapes with the same scripted faults. Replies queued with
/// [`script`](Self::script) are used once each, in order; then a reply drawn
/// from the model's [`always_random`](Self::always_random) set; then the
/// model's [`always`](Self::always) reply; then `"ok from <model>"`. Every call is
/// recorded ([`calls`](Self::calls)) with its model, arrival time (tokio
/// time), messages, stream flag, JSON body, headers and path. Replies can
/// also depend on the API key presented ([`script_for_key`](Self::script_for_key)).
///
/// The server stops when the last clone of its handle is dropped.
///
/// # Example
///
/// ```
/// use llm_fallback::mock::{MockServer, ServerReply};
/// use llm_fallback::providers::openai::OpenAi;
/// use llm_fallback::{ChatRequest, ErrorKind, Message};
/// use tower::ServiceExt;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let server = MockServer::start().await;
/// server.script("gpt-4o-mini", [ServerReply::status(503)]);
/// server.always("gpt-4o-mini", ServerReply::text("hello there"));
///
/// let client = OpenAi::builder().base_url(server.base_url()).api_key("sk-test").build().unwrap();
/// let request = ChatRequest::new("gpt-4o-mini", [Message::user("hi")]);
///
/// let first = client.clone().oneshot(request.clone()).await.unwrap_err();
/// assert_eq!(first.kind(), ErrorKind::Server);
/// let second = client.oneshot(request).await.unwrap();
/// assert_eq!(second.text().as_deref(), Some("hello there"));
///
/// assert_eq!(server.call_count("gpt-4o-mini"), 2);
/// assert_eq!(server.calls()[0].header("authorization"), Some("Bearer sk-test"));
/// # }
/// ```
#[derive(Clone)]
pub struct MockServer {
    inner: Arc<Handle>,
}

struct Handle {
    addr: SocketAddr,
    state: Shared,
    task: AbortHandle,
}

impl Drop for Handle {
    fn drop(&mut self) {
        // Dropping the accept loop drops its JoinSet, which ends every connection.
        self.task.abort();
    }
}

impl MockServer {
    /// Starts a server on `127.0.0.1` and a free port.
    ///
    /// # Panics
    ///
    /// If no port can be bound (see [`try_start`](Self::try_start)), or when
    /// called outside a tokio runtime.
    pub async fn start() -> MockServer {
        match Self::try_start().await {
            Ok(server) => server,
            Err(e) => panic!("mock server: cannot bind 127.0.0.1: {e}"),
        }
    }

    /// Starts a server on `127.0.0.1` and a free port.
    pub async fn try_start() -> io::Result<MockServer> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let state = Shared::default();
        let task = tokio::spawn(accept(listener, state.clone())).abort_handle();
        Ok(MockServer {
            inner: Arc::new(Handle { addr, state, task }),
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// The base URL of an OpenAI-compatible client: `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.inner.addr)
    }

    /// The endpoint of an Azure client: `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.inner.addr)
    }

    /// The base URL of an Anthropic client: `http://127.0.0.1:PORT` (it
    /// posts to `/v1/messages`).
    pub fn anthropic_base_url(&self) -> String {
        format!("http://{}", self.inner.addr)
    }

    /// Queues replies for `model`, used once each, in order.
    pub fn script(&self, model: &str, replies: impl IntoIterator<Item = ServerReply>) {
        self.inner
            .state
            .lock()
            .queued
            .entry(model.to_owned())
            .or_default()
            .extend(replies);
    }

    /// The reply for `model` once its queue is empty.
    pub fn always(&self, model: &str, reply: ServerReply) {
        self.inner
            .state
            .lock()
            .always
            .insert(model.to_owned(), reply);
    }

    /// Draws the reply for `model` from `replies` once its queue is empty
    /// (before any [`always`](Self::always) reply): seeded, scattered
    /// faults for soak tests.
    pub fn always_random(&self, model: &str, replies: RandomReplies) {
        self.inner
            .state
            .lock()
            .random
            .insert(model.to_owned(), replies);
    }

    /// Queues replies for calls to `model` presenting `key` (as
    /// `Authorization: Bearer`, `api-key` or `x-api-key`), used once each
    /// before any reply scripted for the model alone. Lets a test script
    /// "key A rate-limited, key B revoked, key C healthy".
    pub fn script_for_key(
        &self,
        model: &str,
        key: &str,
        replies: impl IntoIterator<Item = ServerReply>,
    ) {
        self.inner
            .state
            .lock()
            .keyed_queued
            .entry((model.to_owned(), key.to_owned()))
            .or_default()
            .extend(replies);
    }

    /// The reply for calls to `model` presenting `key` once that key's
    /// queue is empty (before the model's own script).
    pub fn always_for_key(&self, model: &str, key: &str, reply: ServerReply) {
        self.inner
            .state
            .lock()
            .keyed_always
            .insert((model.to_owned(), key.to_owned()), reply);
    }

    /// How many calls presented `key`.
    pub fn key_count(&self, key: &str) -> usize {
        let state = self.inner.state.lock();
        state
            .calls
            .iter()
            .filter(|c| c.api_key() == Some(key))
            .count()
    }

    /// Every call received, in order of arrival.
    pub fn calls(&self) -> Vec<ServerCall> {
        self.inner.state.lock().calls.clone()
    }

    /// How many calls `model` received.
    pub fn call_count(&self, model: &str) -> usize {
        self.inner
            .state
            .lock()
            .calls
            .iter()
            .filter(|c| c.model == model)
            .count()
    }

    /// The models called, in order.
    pub fn called_models(&self) -> Vec<String> {
        self.inner
            .state
            .lock()
            .calls
            .iter()
            .map(|c| c.model.clone())
            .collect()
    }

    /// Forgets the recorded calls (scripts are kept).
    pub fn clear_calls(&self) {
        self.inner.state.lock().calls.clear();
    }
}

impl fmt::Debug for MockServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockServer")
            .field("addr", &self.inner.addr)
            .field("calls", &self.inner.state.lock().calls.len())
            .finish()
    }
}

async fn accept(listener: TcpListener, state: Shared) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    // Chunks go out as written: Nagle's algorithm would hold
                    // small SSE events back for the peer's delayed ACK (40 ms,
                    // and under paused time, until the next timer fires).
                    let _ = stream.set_nodelay(true);
                    connections.spawn(serve(stream, state.clone()));
                }
                // E.g. out of file descriptors: let connections finish first.
                Err(_) => tokio::task::yield_now().await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn serve(stream: TcpStream, state: Shared) {
    let service = service_fn(move |request| handle(request, state.clone()));
    // Errors here are the scripted resets and cuts, or clients going away.
    let _ = http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

async fn handle(request: Request<Incoming>, state: Shared) -> Result<Response<Body>, BoxError> {
    let (parts, body) = request.into_parts();
    let body = body.collect().await?.to_bytes();
    let (api, call) = match wire::parse(&parts, &body) {
        Ok(parsed) => parsed,
        Err(response) => return Ok(response),
    };
    let reply = state.take(call.clone());
    if matches!(reply.kind, ReplyKind::Hang) {
        std::future::pending::<()>().await;
    }
    if !reply.headers_after.is_zero() {
        tokio::time::sleep(reply.headers_after).await;
    }
    // An error from the service makes hyper close the connection unanswered.
    wire::respond(reply, &call, api).ok_or_else(|| "mock server: scripted reset".into())
}
