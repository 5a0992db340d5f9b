//! [`ResponseFuture`] of [`SelectModel`](super::SelectModel).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use pin_project::pin_project;
use tokio::time::{Instant, Timeout};
use tower_service::Service;
use tracing::Span;

use super::layer::Shared;
use super::policy::Choice;
use crate::chat::{ChatError, ChatRequest, ChatResponse, TimeoutKind};

/// Response future of [`SelectModel`](super::SelectModel): waits for the
/// routing function (or its deadline), then for the inner call.
#[pin_project]
pub struct ResponseFuture<S>
where
    S: Service<ChatRequest>,
{
    #[pin]
    state: State<S>,
    span: Span,
}

// Every future starts in `Selecting`, so boxing it would save nothing.
#[allow(clippy::large_enum_variant)]
#[pin_project(project = StateProj)]
enum State<S>
where
    S: Service<ChatRequest>,
{
    Selecting {
        #[pin]
        choice: Timeout<Choice>,
        /// The request and the service polled ready for it.
        pending: Option<(ChatRequest, S)>,
        shared: Arc<Shared>,
        started: Instant,
    },
    Calling {
        #[pin]
        call: S::Future,
    },
}

impl<S> ResponseFuture<S>
where
    S: Service<ChatRequest>,
{
    pub(super) fn new(
        choice: Timeout<Choice>,
        request: ChatRequest,
        ready: S,
        shared: Arc<Shared>,
        span: Span,
    ) -> Self {
        ResponseFuture {
            state: State::Selecting {
                choice,
                pending: Some((request, ready)),
                shared,
                started: Instant::now(),
            },
            span,
        }
    }
}

impl<S> Future for ResponseFuture<S>
where
    S: Service<ChatRequest, Response = ChatResponse, Error = ChatError>,
{
    type Output = Result<ChatResponse, ChatError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let _entered = this.span.enter();
        loop {
            match this.state.as_mut().project() {
                StateProj::Calling { call } => return call.poll(cx),
                StateProj::Selecting {
                    choice,
                    pending,
                    shared,
                    started,
                } => {
                    let outcome = ready!(choice.poll(cx));
                    let failure = match outcome {
                        Ok(Ok(model)) => match shared.check(&model) {
                            Ok(()) => Ok(model),
                            Err(reason) => Err(reason),
                        },
                        Ok(Err(e)) => Err(format!("the routing function failed: {e}")),
                        Err(_) => {
                            Err(ChatError::timeout(TimeoutKind::Select, started.elapsed())
                                .to_string())
                        }
                    };
                    let model = match failure {
                        Ok(model) => {
                            this.span.record("chosen", model.as_str());
                            this.span.record("by_default", false);
                            model
                        }
                        Err(reason) => {
                            let model = shared.default_model.clone();
                            tracing::warn!(
                                reason = &*reason,
                                default = &*model,
                                "model selection failed; using the default model"
                            );
                            this.span.record("chosen", model.as_str());
                            this.span.record("by_default", true);
                            model
                        }
                    };
                    let (mut request, mut ready) = pending
                        .take()
                        .expect("ResponseFuture polled after completion");
                    request.set_model(model);
                    let call = ready.call(request);
                    this.state.set(State::Calling { call });
                }
            }
        }
    }
}

impl<S> fmt::Debug for ResponseFuture<S>
where
    S: Service<ChatRequest>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Selecting { .. } => "selecting",
            State::Calling { .. } => "calling",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish()
    }
}
