//! Mid-stream recovery: a committed stream that is cut, stalls or breaks is
//! finished on the next candidate instead of failing.
//!
//! The stream that served is passed on as is. Every chunk shows the chunk
//! `id`, `created`, `system_fingerprint` and `model` (the full id of the
//! model that served first) of the first chunk, whichever model produced
//! it: the caller sees one consistent stream, and the attempt log says who
//! finished the answer. When it ends with a cut, a stall
//! or a protocol fault (an event that cannot be read, or an in-band error
//! of a kind that falls back: not a content filter or a bad request), and
//! the answer so far is plain text, the next candidate is called through the
//! same inner stack, chosen by the rules of the first attempt (cooling
//! candidates skipped, then the [`AllCooling`](crate::layers::health::AllCooling) last
//! resort, within the call's [`MaxUpstreamCalls`](crate::chat::MaxUpstreamCalls)):
//!
//! - a model declared to support assistant prefill gets the conversation
//!   plus the partial answer as a final assistant message, and its
//!   continuation is passed on;
//! - any other model answers from the beginning, and its answer is passed on
//!   only from where the delivered text ends, provided it repeats that text
//!   exactly; otherwise the next candidate is tried.
//!
//! When no candidate finishes the answer, the caller gets the first fault
//! (the cut or stall of the model that served), never a recovery attempt's
//! own error; the attempt log has them all.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use futures_core::Stream;
use tokio::time::Instant;
use tower_service::Service;

use super::candidates::Candidates;
use super::identity::Identity;
use super::splice::{Answer, Verdict};
use super::CandidateSource;
use crate::chat::streaming::record_stream_fault;
use crate::chat::{
    ChatChunk, ChatError, ChatRequest, ChatResponse, ChatStream, ErrorKind, Message, ResponseBody,
    StreamFault,
};

/// What recovery needs of the routed call to go on: the candidates left
/// (picked by the rules of the first attempt, logged in the call's log) and
/// the inner service to call them through.
pub(super) struct Continuation<S, C> {
    /// The inner service, the same stack the first attempt went through.
    pub(super) svc: S,
    /// The call's candidates, as the engine left them.
    pub(super) candidates: Candidates<C>,
}

/// The stream of a routed call that may be finished on another candidate.
pub(super) struct Recover<S, C>
where
    S: Service<ChatRequest>,
{
    rest: Continuation<S, C>,
    state: State<S::Future>,
    answer: Answer,
    /// The model producing the chunks now.
    model: Arc<str>,
    /// What the first chunk passed on showed: every later chunk shows it too.
    first: Option<Identity>,
    /// Its entry in the attempt log.
    index: usize,
    /// The first fault: what the caller gets if no candidate finishes.
    original: Option<ChatError>,
    /// The log's length and the time when the current recovery call started.
    before: usize,
    started: Instant,
}

// Nothing in a `Recover` is ever pinned: the inner call's future is boxed,
// and the service is only called through `&mut`.
impl<S, C> Unpin for Recover<S, C> where S: Service<ChatRequest> {}

enum State<F> {
    Streaming(ChatStream),
    /// Waiting for the service to be ready for this request.
    Ready(Option<ChatRequest>),
    Calling(Pin<Box<F>>),
    Done,
}

impl<S, C> Recover<S, C>
where
    S: Service<ChatRequest, Response = ChatResponse, Error = ChatError> + Send + 'static,
    S::Future: Send + 'static,
    C: CandidateSource,
{
    /// Makes the stream of `response`, whose attempt is at `index` in the
    /// call's log, recoverable over the candidates left in `rest`.
    pub(super) fn wrap(
        mut response: ChatResponse,
        rest: Continuation<S, C>,
        index: usize,
    ) -> ChatResponse {
        let Some(stream) = response.stream_mut() else {
            return response;
        };
        let stream = std::mem::replace(stream, ChatStream::from_items(Vec::new()));
        let recover = Recover {
            rest,
            state: State::Streaming(stream),
            answer: Answer::new(),
            model: Arc::from(response.model()),
            first: None,
            index,
            original: None,
            before: 0,
            started: Instant::now(),
        };
        *response.body_mut() = ResponseBody::Stream(ChatStream::new(recover));
        response
    }

    /// The stream being read ended with `error`: `Some` ends the stream.
    fn on_fault(&mut self, mut error: ChatError) -> Option<ChatError> {
        record_stream_fault(self.rest.candidates.log(), self.index, &error, None);
        let resumable = error.kind() == ErrorKind::StreamInterrupted
            && match error.stream_fault() {
                Some((StreamFault::Cut | StreamFault::Stall, _)) => true,
                Some((StreamFault::Protocol, _)) => {
                    provider_kind(&error).is_none_or(ErrorKind::is_fallbackable)
                }
                _ => false,
            }
            && self.answer.can_resume();
        tracing::debug!(
            model = &*self.model,
            chunks = self.answer.chunks(),
            kind = %error.kind(),
            resumable,
            "stream fault"
        );
        if self.original.is_none() {
            error.set_model(&*self.model);
            if !resumable {
                self.state = State::Done;
                error.set_attempts(self.rest.candidates.log().snapshot());
                return Some(error);
            }
            self.original = Some(error);
        } else if !resumable {
            return Some(self.give_up());
        }
        self.next()
    }

    /// The model called to take over failed before it did.
    fn failed(&mut self, error: &ChatError) -> Option<ChatError> {
        tracing::debug!(model = &*self.model, kind = %error.kind(), "recovery attempt failed");
        self.next()
    }

    /// The restarted answer does not repeat the delivered text.
    fn diverged(&mut self, why: &'static str) -> Option<ChatError> {
        let error =
            ChatError::stream_interrupted(StreamFault::Protocol, 0, why).with_model(&*self.model);
        record_stream_fault(
            self.rest.candidates.log(),
            self.index,
            &error,
            Some(self.started.elapsed()),
        );
        self.failed(&error)
    }

    /// Calls the next candidate by the rules of the first attempt (cooling
    /// candidates skipped, then the [`AllCooling`](crate::layers::health::AllCooling) last
    /// resort, within the call's caps), or gives up.
    fn next(&mut self) -> Option<ChatError> {
        let candidates = &mut self.rest.candidates;
        let Some((model, force)) = candidates.next() else {
            return Some(self.give_up());
        };
        let prefill = candidates.prefills(&model);
        let mut request = candidates.request_for(&model, force);
        if prefill {
            let partial = Message::assistant(self.answer.text());
            request.messages_mut().push(partial);
        }
        tracing::debug!(
            model = &*model,
            prefill,
            forced = force,
            delivered = self.answer.text().len(),
            "finishing the answer on the next candidate"
        );
        self.answer.resume(prefill);
        self.model = model;
        self.state = State::Ready(Some(request));
        None
    }

    fn give_up(&mut self) -> ChatError {
        self.state = State::Done;
        let mut error = self
            .original
            .take()
            .unwrap_or_else(|| ChatError::new(ErrorKind::StreamInterrupted, "stream failed"));
        error.set_attempts(self.rest.candidates.log().snapshot());
        error
    }
}

/// The kind of the provider's own error behind a stream fault, if any (an
/// in-band error event); an unreadable event's is `Server`.
fn provider_kind(error: &ChatError) -> Option<ErrorKind> {
    std::error::Error::source(error)
        .and_then(|source| source.downcast_ref::<ChatError>())
        .map(ChatError::kind)
}

impl<S, C> Stream for Recover<S, C>
where
    S: Service<ChatRequest, Response = ChatResponse, Error = ChatError> + Send + 'static,
    S::Future: Send + 'static,
    C: CandidateSource,
{
    type Item = Result<ChatChunk, ChatError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            let fault = match &mut this.state {
                State::Done => return Poll::Ready(None),
                State::Streaming(stream) => match ready!(Pin::new(stream).poll_next(cx)) {
                    Some(Ok(chunk)) => match this.answer.accept(chunk) {
                        Verdict::Pass(mut chunk) => {
                            match &this.first {
                                Some(first) => first.stamp(&mut chunk),
                                None => {
                                    chunk.model.clear();
                                    chunk.model.push_str(&this.model);
                                    this.first = Some(Identity::of(&chunk));
                                }
                            }
                            return Poll::Ready(Some(Ok(chunk)));
                        }
                        Verdict::Skip => None,
                        Verdict::Diverged(why) => this.diverged(why),
                    },
                    Some(Err(e)) => this.on_fault(e),
                    None if this.answer.may_end() => {
                        this.state = State::Done;
                        return Poll::Ready(None);
                    }
                    None => this.diverged("the restarted answer ended before repeating the text"),
                },
                State::Ready(request) => match ready!(this.rest.svc.poll_ready(cx)) {
                    Ok(()) => {
                        let request = request.take().expect("a request is pending");
                        this.before = this.rest.candidates.log().len();
                        this.started = Instant::now();
                        let call = this.rest.svc.call(request);
                        this.state = State::Calling(Box::pin(call));
                        None
                    }
                    Err(e) => this.failed(&e),
                },
                State::Calling(call) => {
                    let result = ready!(call.as_mut().poll(cx));
                    let log = this.rest.candidates.log();
                    let latency = this.started.elapsed();
                    log.record_if_missing(this.before, &this.model, &result, latency);
                    if let Ok(response) = &result {
                        // The candidate may be a route (`_route/<alias>`):
                        // errors and the log name the model that answered.
                        this.model = Arc::from(response.model());
                    }
                    match result.map(ChatResponse::into_stream) {
                        Ok(Some(stream)) => {
                            this.index = log.len().saturating_sub(1);
                            this.state = State::Streaming(stream);
                            None
                        }
                        Ok(None) => {
                            let e = ChatError::new(
                                ErrorKind::Server,
                                "a stream request was answered in one piece",
                            );
                            record_stream_fault(log, log.len().saturating_sub(1), &e, None);
                            this.failed(&e)
                        }
                        Err(e) => {
                            let model = this.model.clone();
                            this.rest.candidates.note_error(&model, &e);
                            this.failed(&e)
                        }
                    }
                }
            };
            if let Some(error) = fault {
                return Poll::Ready(Some(Err(error)));
            }
        }
    }
}
