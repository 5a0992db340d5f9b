//! Per-model leading messages: each model called gets its own messages placed before the caller's.
//!
//! Different models often need different instructions (a system prompt tuned
//! per vendor, a developer message only one model understands). This layer
//! looks up the request's model *as it reaches the layer* — the concrete
//! `provider/model` chosen by the fallback and balance layers above — and
//! sets the request's [prepended](crate::ChatRequest::prepended) messages to
//! that model's list, or to none.
//!
//! Setting *replaces*: a retry of the same request sets the same messages
//! again instead of adding a second copy, and a fallback to another model
//! replaces the first model's messages with its own. The caller's messages
//! are never modified. The lists are stored as `Arc<[Message]>`, so a
//! request costs one map lookup and a reference-count increment whatever
//! the size of the prompts.
//!
//! Only roles that may open a conversation are accepted (`system`,
//! `developer`, `user`); anything else is rejected when the layer is built.
//! Place it below `Retry` and the routing layers, just above the providers,
//! as in the canonical stack.
//!
//! # Example
//!
//! ```
//! use llm_fallback::mock::MockProvider;
//! use llm_fallback::{ChatRequest, Message, PrependMessagesLayer};
//! use llm_fallback::chat::Role;
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let upstream = MockProvider::new();
//! let prepend = PrependMessagesLayer::builder()
//!     .all_models([Message::system("Be brief.")])
//!     .model("anthropic/claude-3-5-sonnet-20240620", [Message::system("Answer in plain text.")])
//!     .build()
//!     .unwrap();
//! let service = ServiceBuilder::new().layer(prepend).service(upstream.clone());
//!
//! let request = ChatRequest::new("openai/gpt-4o", [Message::user("hi")]);
//! service.oneshot(request).await.unwrap();
//! let sent = &upstream.calls()[0].messages;
//! assert_eq!(sent[0].text(), "Be brief.");
//! assert_eq!(sent[1].role, Role::User);
//! # }
//! ```

mod layer;

use std::sync::Arc;
use std::task::{Context, Poll};

use tower_service::Service;

pub use self::layer::{PrependBuilder, PrependMessagesLayer};

use crate::chat::{ChatError, ChatRequest, ChatResponse, Message, PerModel};

/// The per-model lists, `None` for "no messages".
pub(crate) type Lists = Arc<PerModel<Option<Arc<[Message]>>>>;

/// Sets the prepended messages of each request to those of its model. See
/// the [module docs](self).
#[derive(Clone, Debug)]
pub struct PrependMessages<S> {
    inner: S,
    lists: Lists,
}

impl<S> PrependMessages<S> {
    /// Wraps `inner` with the lists of `layer` (built by
    /// [`PrependMessagesLayer::builder`]).
    pub fn new(inner: S, layer: PrependMessagesLayer) -> Self {
        PrependMessages {
            inner,
            lists: layer.lists,
        }
    }

    /// The messages placed before the caller's for `model`.
    pub fn messages_for(&self, model: &str) -> &[Message] {
        self.lists.get(model).as_deref().unwrap_or(&[])
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
}

impl<S> Service<ChatRequest> for PrependMessages<S>
where
    S: Service<ChatRequest, Response = ChatResponse, Error = ChatError>,
{
    type Response = ChatResponse;
    type Error = ChatError;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ChatError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: ChatRequest) -> S::Future {
        let messages = self.lists.get(request.model()).clone();
        request.set_prepended(messages);
        self.inner.call(request)
    }
}
