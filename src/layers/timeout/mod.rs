//! Deadlines: a per-model deadline for each attempt, or the total budget of a whole call.
//!
//! Used outermost, [`TimeoutLayer::total`] is the call's budget: it stamps the
//! request's [`Deadline`](crate::chat::Deadline) so inner layers (retry backoff, the
//! attempt timeout) never wait past it, and fails with
//! [`TimeoutKind::Total`]. Used near the leaf, [`TimeoutLayer::attempt`] /
//! [`TimeoutLayer::per_model`] bound each attempt and fail with
//! [`TimeoutKind::Attempt`]; an attempt deadline also fires at the request's
//! deadline when that comes first, reporting `Total` then. A call whose
//! deadline has already passed fails at once, without an upstream call.
//!
//! Errors carry the model, which deadline fired
//! ([`ChatError::timeout_kind`](crate::ChatError::timeout_kind)) and the
//! attempt log. The happy path allocates nothing beyond a copy of the model id
//! (the error must name it) and the shared attempt log: the future is a
//! `pin-project` state with an inline [`tokio::time::Sleep`], as in tower's
//! timeout.
//!
//! For a stream, the future resolves at the commit point (the first content
//! chunk), so an attempt deadline bounds the time to first token. Streams
//! also have their own deadlines, per model and each optional
//! ([`StreamDeadlines`], set with
//! [`with_stream_deadlines`](TimeoutLayer::with_stream_deadlines)): headers,
//! first token, idle gap between chunks, whole stream. Before the first token
//! they fail the attempt like any timeout (kind `Timeout`, not retried by
//! default, so the call moves on to the next candidate); after it, a stall
//! ends the stream with a `StreamInterrupted` item
//! ([`StreamFault::Stall`](crate::chat::StreamFault::Stall)) and the number of
//! chunks delivered, which mid-stream recovery can act on. The first-token
//! deadline can also be learned per model from its own streams, the
//! configured one becoming a ceiling
//! ([`AdaptiveFirstToken`], set with
//! [`with_adaptive_first_token`](TimeoutLayer::with_adaptive_first_token)).
//!
//! The attempt layer also watches every stream it hands over and writes how
//! it ended into the attempt's log entry: a fault after the commit point
//! turns the entry (a success at the commit point) into a failure, and the
//! stream events that could not be read are counted in
//! [`Attempt::malformed`](crate::chat::Attempt::malformed). The live log
//! ([`AttemptLog::of`](crate::chat::AttemptLog::of) on the request before the call)
//! shows it once the stream has ended.
//!
//! # Defaults
//!
//! Every call ends by itself under the defaults: the clients connect within
//! [`DEFAULT_CONNECT`] and give up on a connection silent for
//! [`DEFAULT_READ`]; a stack built from a config bounds each complete answer
//! by [`DEFAULT_ATTEMPT`], and streams by [`StreamDeadlines`]' defaults. The
//! README's "Timeouts" section has every default in one table.
//!
//! From a config file's `[timeout]`: [`TimeoutConfig`], checked and built by
//! [`TimeoutLayer::total_from_config`] and [`TimeoutLayer::attempt_from_config`].
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use llm_fallback::mock::{MockProvider, MockReply};
//! use llm_fallback::{ChatRequest, ErrorKind, Message, TimeoutLayer};
//! use llm_fallback::chat::{PerModel, TimeoutKind};
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
//! let mock = MockProvider::new();
//! mock.always("azure/gpt-4o", MockReply::text("late").after(Duration::from_secs(20)));
//! let stack = ServiceBuilder::new()
//!     .layer(TimeoutLayer::total(Duration::from_secs(30)))
//!     .layer(TimeoutLayer::per_model(
//!         PerModel::new(Some(Duration::from_secs(10)))
//!             .with("openai/o1", Some(Duration::from_secs(60))),
//!     ))
//!     .service(mock);
//!
//! let request = ChatRequest::new("azure/gpt-4o", [Message::user("hi")]);
//! let error = stack.oneshot(request).await.unwrap_err();
//! assert_eq!(error.kind(), ErrorKind::Timeout);
//! assert_eq!(error.timeout_kind(), Some(TimeoutKind::Attempt));
//! assert_eq!(error.model(), Some("azure/gpt-4o"));
//! # }
//! ```

mod adaptive;
mod config;
mod deadlines;
mod layer;
mod stream;

pub mod future;

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;
use tower_service::Service;

use crate::chat::streaming::HeadersDeadline;
use crate::chat::{AttemptLog, ChatError, MalformedChunks, PerModel, TimeoutKind};
use crate::{ChatRequest, ChatResponse};

pub use self::adaptive::{AdaptiveFirstToken, AdaptiveFirstTokenBuilder};
pub use self::config::{AdaptiveConfig, TimeoutConfig};
pub use self::deadlines::StreamDeadlines;
pub use self::future::ResponseFuture;
pub use self::layer::TimeoutLayer;

use self::stream::StreamPlan;

/// The attempt deadline of a complete (non-streaming) answer in a stack
/// built from a config that sets none: 60 s, as Not Diamond's `init`. A
/// provider that accepts the call and never answers fails the attempt with
/// [`TimeoutKind::Attempt`] then, and fallback starts.
pub const DEFAULT_ATTEMPT: Duration = Duration::from_secs(60);

/// The connect timeout (TCP and TLS) of the provider clients' own HTTP
/// client: 10 s. A reachable provider connects in milliseconds.
pub const DEFAULT_CONNECT: Duration = Duration::from_secs(10);

/// The read timeout of the provider clients' own HTTP client: a connection
/// silent for 10 minutes fails with kind `Timeout`. A last resort for
/// stacks without an attempt deadline, long enough for the slowest
/// reasoning models; the layers' deadlines are the real bounds.
pub const DEFAULT_READ: Duration = Duration::from_secs(600);

/// Fails a call that runs past its deadline. See the [module docs](self).
#[derive(Clone)]
pub struct Timeout<S> {
    inner: S,
    budget: Budget,
    streams: Option<Arc<PerModel<StreamDeadlines>>>,
    complete: Option<Arc<PerModel<Option<Duration>>>>,
    adaptive: Option<AdaptiveFirstToken>,
}

#[derive(Clone, Debug)]
pub(crate) enum Budget {
    Attempt(Arc<PerModel<Option<Duration>>>),
    Total(Duration),
}

impl<S> Timeout<S> {
    /// Wraps `inner` with the deadlines of `layer` (e.g.
    /// [`TimeoutLayer::attempt`], [`TimeoutLayer::total`]).
    pub fn new(inner: S, layer: TimeoutLayer) -> Self {
        tower_layer::Layer::layer(&layer, inner)
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// When the call must end, and which deadline that is. For a stream, the
    /// call ends at the first token, so its first-token and total deadlines
    /// bound it too.
    fn deadline(
        &self,
        request: &mut ChatRequest,
        now: Instant,
        stream: Option<&StreamDeadlines>,
    ) -> Option<(Instant, TimeoutKind)> {
        let at = |d: Option<Duration>| d.and_then(|d| now.checked_add(d));
        let attempt = match &self.budget {
            Budget::Total(total) => {
                // A budget too large to represent is no budget at all.
                if let Some(deadline) = now.checked_add(*total) {
                    request.set_deadline(deadline);
                }
                None
            }
            Budget::Attempt(timeouts) => {
                let complete = self.complete.as_deref().filter(|_| !request.is_stream());
                at(*complete.unwrap_or(timeouts).get(request.model()))
            }
        };
        // Earliest first; on a tie the first listed names it.
        [
            request.deadline().map(|d| (d, TimeoutKind::Total)),
            at(stream.and_then(StreamDeadlines::first_token)).map(|d| (d, TimeoutKind::FirstToken)),
            attempt.map(|d| (d, TimeoutKind::Attempt)),
            at(stream.and_then(StreamDeadlines::total)).map(|d| (d, TimeoutKind::Attempt)),
        ]
        .into_iter()
        .flatten()
        .reduce(|a, b| if b.0 < a.0 { b } else { a })
    }

    /// The plan for a stream request's stream, and the headers deadline
    /// handed to the client. `None` when this layer does not watch streams.
    fn plan(
        &self,
        request: &mut ChatRequest,
        now: Instant,
        deadlines: Option<&StreamDeadlines>,
    ) -> Option<StreamPlan> {
        let watches = deadlines.is_some() || matches!(self.budget, Budget::Attempt(_));
        if !request.is_stream() || !watches {
            return None;
        }
        let at = |d: Option<Duration>| d.and_then(|d| now.checked_add(d));
        if let Some(headers) = at(deadlines.and_then(StreamDeadlines::headers)) {
            let earlier = request.extensions().get::<HeadersDeadline>().map(|h| h.0);
            if earlier.is_none_or(|earlier| headers < earlier) {
                request.extensions_mut().insert(HeadersDeadline(headers));
            }
        }
        let malformed = match request.extensions().get::<MalformedChunks>() {
            Some(counter) => counter.clone(),
            None => {
                let counter = MalformedChunks::new();
                request.extensions_mut().insert(counter.clone());
                counter
            }
        };
        Some(StreamPlan {
            idle: deadlines.and_then(StreamDeadlines::idle),
            total_at: at(deadlines.and_then(StreamDeadlines::total)),
            base: malformed.count(),
            malformed,
        })
    }
}

impl<S: fmt::Debug> fmt::Debug for Timeout<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timeout")
            .field("inner", &self.inner)
            .field("budget", &self.budget)
            .field("streams", &self.streams)
            .field("complete", &self.complete)
            .field("adaptive", &self.adaptive)
            .finish()
    }
}

impl<S> Service<ChatRequest> for Timeout<S>
where
    S: Service<ChatRequest, Response = ChatResponse, Error = ChatError>,
{
    type Response = ChatResponse;
    type Error = ChatError;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ChatError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: ChatRequest) -> Self::Future {
        let start = Instant::now();
        let mut deadlines = self
            .streams
            .as_deref()
            .filter(|_| request.is_stream())
            .map(|s| *s.get(request.model()));
        // Only streams with a first-token deadline learn and use one.
        let adaptive = match (&self.adaptive, &mut deadlines) {
            (Some(adaptive), Some(d)) if d.first_token().is_some() => {
                let configured = d.first_token();
                *d = d.with_first_token(configured.map(|c| adaptive.deadline(request.model(), c)));
                Some(adaptive.clone())
            }
            _ => None,
        };
        let deadline = self.deadline(&mut request, start, deadlines.as_ref());
        let stream = self.plan(&mut request, start, deadlines.as_ref());
        let model = request.model().to_owned();
        let log = AttemptLog::enter(&mut request);
        let before = log.len();
        let call = future::Call {
            model,
            log,
            before,
            start,
            stream,
            adaptive,
        };
        match deadline {
            Some((at, which)) if at <= start => ResponseFuture::expired(call, which),
            Some((at, which)) => {
                ResponseFuture::new(self.inner.call(request), Some((at, which)), call)
            }
            None => ResponseFuture::new(self.inner.call(request), None, call),
        }
    }
}
