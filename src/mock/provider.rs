use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use http::StatusCode;
use serde_json::{Map, Value};
use tokio::time::Instant;
use tower_service::Service;

use super::answer::{answer, late_commit, words, Outcome};
use crate::chat::{ChatError, ChatFuture, ErrorKind, Message};
use crate::{ChatRequest, ChatResponse};

/// An in-process provider whose answers are scripted per model. It records
/// every call so tests can assert what the "upstream" saw.
///
/// Replies queued with [`script`](Self::script) are used once each, in order;
/// when a model's queue is empty its [`always`](Self::always) reply is used,
/// and without one the model answers `"ok from <model>"`. Delays run on
/// tokio time, so tests with paused time stay instant.
///
/// ```
/// use llm_fallback::{mock::{MockProvider, MockReply}, ChatRequest, ErrorKind, Message};
/// use tower::ServiceExt;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let mock = MockProvider::new();
/// mock.script("openai/gpt-4o", [MockReply::error(ErrorKind::Server), MockReply::text("hi")]);
/// let request = ChatRequest::new("openai/gpt-4o", [Message::user("hello")]);
/// let first = mock.clone().oneshot(request.clone()).await;
/// assert_eq!(first.unwrap_err().kind(), ErrorKind::Server);
/// let second = mock.clone().oneshot(request).await.unwrap();
/// assert_eq!(second.text().as_deref(), Some("hi"));
/// assert_eq!(mock.call_count("openai/gpt-4o"), 2);
/// # }
/// ```
#[derive(Clone, Default)]
pub struct MockProvider {
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    queued: HashMap<String, VecDeque<MockReply>>,
    always: HashMap<String, MockReply>,
    calls: Vec<MockCall>,
    /// The models of calls dropped before they answered, in order.
    dropped: Vec<String>,
}

/// A call the mock received.
#[derive(Clone, Debug)]
pub struct MockCall {
    /// The model as it reached the mock.
    pub model: String,
    /// When it arrived (tokio time).
    pub at: Instant,
    /// Every message sent, prepended ones first.
    pub messages: Vec<Message>,
    /// Whether a stream was asked for.
    pub stream: bool,
    /// The request's other fields.
    pub extra: Map<String, Value>,
}

/// What the mock answers to one call.
#[derive(Clone, Debug)]
pub struct MockReply {
    delay: Duration,
    /// For a stream: from the head to the first content chunk.
    first_token: Duration,
    outcome: Outcome,
}

impl MockReply {
    /// Answers `text` (as a completion, or as a stream of one chunk per word).
    pub fn text(text: impl Into<String>) -> Self {
        MockReply {
            delay: Duration::ZERO,
            first_token: Duration::ZERO,
            outcome: Outcome::Text(text.into()),
        }
    }

    /// Fails with `kind`, and the status a provider would send for it.
    pub fn error(kind: ErrorKind) -> Self {
        let status = match kind {
            ErrorKind::RateLimited => Some(StatusCode::TOO_MANY_REQUESTS),
            ErrorKind::Server => Some(StatusCode::INTERNAL_SERVER_ERROR),
            ErrorKind::Auth => Some(StatusCode::UNAUTHORIZED),
            ErrorKind::NotFound => Some(StatusCode::NOT_FOUND),
            ErrorKind::ContextWindowExceeded | ErrorKind::ContentFilter | ErrorKind::BadRequest => {
                Some(StatusCode::BAD_REQUEST)
            }
            _ => None,
        };
        MockReply {
            delay: Duration::ZERO,
            first_token: Duration::ZERO,
            outcome: Outcome::Error {
                kind,
                status,
                message: format!("mock {kind}"),
                retry_after: None,
            },
        }
    }

    /// For a stream: sends the first `after_chunks` word chunks of `text`, then
    /// fails with `StreamInterrupted` (cut). For a complete answer: a `Connect`
    /// error.
    pub fn stream_cut(text: impl Into<String>, after_chunks: usize) -> Self {
        MockReply {
            delay: Duration::ZERO,
            first_token: Duration::ZERO,
            outcome: Outcome::StreamCut {
                text: text.into(),
                after_chunks,
            },
        }
    }

    /// Waits `delay` (tokio time) before answering.
    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// For a stream: waits `delay` more between the response head (after
    /// [`after`](Self::after)) and the first content chunk, and answers
    /// only once that chunk is there, as the provider clients do (the
    /// commit point, see [`commit`](crate::chat::streaming::commit)).
    pub fn first_token_after(mut self, delay: Duration) -> Self {
        self.first_token = delay;
        self
    }

    /// Sets the status of an error reply.
    pub fn with_status(mut self, status: StatusCode) -> Self {
        if let Outcome::Error { status: s, .. } = &mut self.outcome {
            *s = Some(status);
        }
        self
    }

    /// Sets the `Retry-After` of an error reply.
    pub fn with_retry_after(mut self, after: Duration) -> Self {
        if let Outcome::Error { retry_after, .. } = &mut self.outcome {
            *retry_after = Some(after);
        }
        self
    }

    /// Sets the message of an error reply.
    pub fn with_message(mut self, text: impl Into<String>) -> Self {
        if let Outcome::Error { message, .. } = &mut self.outcome {
            *message = text.into();
        }
        self
    }
}

impl MockProvider {
    /// A mock in which every model answers `"ok from <model>"`.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues replies for `model`, used once each in order.
    pub fn script(&self, model: &str, replies: impl IntoIterator<Item = MockReply>) {
        self.lock()
            .queued
            .entry(model.to_owned())
            .or_default()
            .extend(replies);
    }

    /// The reply for `model` once its queue is empty.
    pub fn always(&self, model: &str, reply: MockReply) {
        self.lock().always.insert(model.to_owned(), reply);
    }

    /// Every call received, in order.
    pub fn calls(&self) -> Vec<MockCall> {
        self.lock().calls.clone()
    }

    /// How many calls `model` received.
    pub fn call_count(&self, model: &str) -> usize {
        self.lock()
            .calls
            .iter()
            .filter(|c| c.model == model)
            .count()
    }

    /// The models called, in order.
    pub fn called_models(&self) -> Vec<String> {
        self.lock().calls.iter().map(|c| c.model.clone()).collect()
    }

    /// The models of the calls that were dropped before they answered (the
    /// caller closed the connection), in order.
    pub fn dropped(&self) -> Vec<String> {
        self.lock().dropped.clone()
    }

    /// Forgets the recorded calls (and dropped ones).
    pub fn clear_calls(&self) {
        let mut state = self.lock();
        state.calls.clear();
        state.dropped.clear();
    }
}

impl fmt::Debug for MockProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("MockProvider")
            .field("calls", &state.calls.len())
            .finish_non_exhaustive()
    }
}

impl Service<ChatRequest> for MockProvider {
    type Response = ChatResponse;
    type Error = ChatError;
    type Future = ChatFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), ChatError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: ChatRequest) -> ChatFuture {
        let model = request.model().to_owned();
        let reply = {
            let mut state = self.lock();
            state.calls.push(MockCall {
                model: model.clone(),
                at: Instant::now(),
                messages: request.all_messages().cloned().collect(),
                stream: request.is_stream(),
                extra: request.extra().clone(),
            });
            state
                .queued
                .get_mut(&model)
                .and_then(VecDeque::pop_front)
                .or_else(|| state.always.get(&model).cloned())
                .unwrap_or_else(|| MockReply::text(format!("ok from {model}")))
        };
        let stream = request.is_stream();
        let prompt_tokens = request.all_messages().map(|m| words(&m.text())).sum();
        let mut unanswered = Unanswered {
            state: self.state.clone(),
            model: Some(model.clone()),
        };
        ChatFuture::new(async move {
            if !reply.delay.is_zero() {
                tokio::time::sleep(reply.delay).await;
            }
            let mut out = answer(model, reply.outcome, stream, prompt_tokens);
            if !reply.first_token.is_zero() {
                out = match out {
                    Ok(response) if response.is_stream() => {
                        late_commit(response, reply.first_token).await
                    }
                    other => other,
                };
            }
            unanswered.answered();
            out
        })
    }
}

/// Notes a call dropped before it answered.
struct Unanswered {
    state: Arc<Mutex<State>>,
    model: Option<String>,
}

impl Unanswered {
    fn answered(&mut self) {
        self.model = None;
    }
}

impl Drop for Unanswered {
    fn drop(&mut self) {
        if let Some(model) = self.model.take() {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            state.dropped.push(model);
        }
    }
}
