//! The leaf router: dispatches `provider/model` to the client registered for `provider`.

#[cfg(feature = "anthropic")]
pub mod anthropic;
pub mod credentials;
pub mod http_error;
#[cfg(feature = "openai")]
pub mod openai;
#[cfg(any(feature = "openai", feature = "anthropic"))]
pub(crate) mod transport;

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use pin_project::pin_project;
use tower::util::{BoxCloneSyncService, Oneshot};
use tower::ServiceExt;
use tower_service::Service;

use crate::chat::{
    split_model_id, validate_provider_name, ChatError, ChatRequest, ChatResponse, ConfigError,
    ErrorKind,
};

/// A boxed, cloneable chat service: what a built stack or a provider client is
/// erased to.
pub type BoxChatService = BoxCloneSyncService<ChatRequest, ChatResponse, ChatError>;

/// Routes each request to the client registered under its model's provider
/// prefix, and sends the model name without the prefix: `azure/gpt-4o` goes to
/// the `azure` client as `gpt-4o`. Responses and errors name the full id again.
///
/// ```
/// use llm_fallback::{mock::{MockProvider, MockReply}, ChatRequest, Message, Providers};
/// use tower::ServiceExt;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let azure = MockProvider::new();
/// azure.always("gpt-4o", MockReply::text("hello from azure"));
/// let providers = Providers::builder().provider("azure", azure.clone()).build().unwrap();
///
/// let response = providers
///     .oneshot(ChatRequest::new("azure/gpt-4o", [Message::user("hi")]))
///     .await
///     .unwrap();
/// assert_eq!(response.model(), "azure/gpt-4o");
/// assert_eq!(azure.calls()[0].model, "gpt-4o");
/// # }
/// ```
#[derive(Clone)]
pub struct Providers {
    routes: Arc<BTreeMap<String, BoxChatService>>,
}

impl Providers {
    /// Starts registering providers.
    pub fn builder() -> ProvidersBuilder {
        ProvidersBuilder::default()
    }

    /// The registered provider names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.routes.keys().map(String::as_str)
    }

    /// Whether `provider` is registered.
    pub fn contains(&self, provider: &str) -> bool {
        self.routes.contains_key(provider)
    }

    fn known(&self) -> String {
        self.names()
            .map(|n| format!("{n:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Debug for Providers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Providers")
            .field("providers", &self.routes.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Builds [`Providers`]; invalid names and duplicates are reported by
/// [`build`](Self::build).
#[derive(Default)]
pub struct ProvidersBuilder {
    routes: BTreeMap<String, BoxChatService>,
    errors: ConfigError,
}

impl ProvidersBuilder {
    /// Registers `service` for model ids starting with `name/`.
    pub fn provider<S>(mut self, name: impl Into<String>, service: S) -> Self
    where
        S: tower_service::Service<ChatRequest, Response = ChatResponse, Error = ChatError>
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        let name = name.into();
        let path = format!("providers.{name}");
        if let Err(e) = validate_provider_name(&name) {
            self.errors.push(path, e);
            return self;
        }
        match self.routes.entry(name) {
            std::collections::btree_map::Entry::Occupied(taken) => {
                let message = format!("provider {:?} is registered twice", taken.key());
                self.errors.push(path, message);
            }
            std::collections::btree_map::Entry::Vacant(slot) => {
                slot.insert(BoxChatService::new(service));
            }
        }
        self
    }

    /// The router, or every problem found.
    pub fn build(mut self) -> Result<Providers, ConfigError> {
        if self.routes.is_empty() && self.errors.is_empty() {
            self.errors.push("providers", "no provider is registered");
        }
        self.errors.into_result(Providers {
            routes: Arc::new(self.routes),
        })
    }
}

impl fmt::Debug for ProvidersBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProvidersBuilder")
            .field("providers", &self.routes.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Service<ChatRequest> for Providers {
    type Response = ChatResponse;
    type Error = ChatError;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), ChatError>> {
        // The target is known only per request; `call` drives the chosen
        // client's readiness through `Oneshot`.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: ChatRequest) -> ResponseFuture {
        let id = request.model().to_owned();
        let Some((provider, model)) = split_model_id(&id) else {
            let e = ChatError::new(
                ErrorKind::BadRequest,
                format!("model id {id:?} is not of the form \"<provider>/<model>\""),
            )
            .with_model(id);
            return ResponseFuture::failed(e);
        };
        let Some(service) = self.routes.get(provider) else {
            let e = ChatError::new(
                ErrorKind::NotFound,
                format!(
                    "no provider named {provider:?} is registered (known: {})",
                    self.known()
                ),
            )
            .with_model(id);
            return ResponseFuture::failed(e);
        };
        request.set_model(model);
        ResponseFuture {
            state: State::Calling {
                call: service.clone().oneshot(request),
                model: id,
            },
        }
    }
}

/// Response future of [`Providers`].
#[pin_project]
pub struct ResponseFuture {
    #[pin]
    state: State,
}

#[pin_project(project = StateProj)]
enum State {
    Failed(Option<ChatError>),
    Calling {
        #[pin]
        call: Oneshot<BoxChatService, ChatRequest>,
        model: String,
    },
}

impl ResponseFuture {
    fn failed(e: ChatError) -> Self {
        ResponseFuture {
            state: State::Failed(Some(e)),
        }
    }
}

impl Future for ResponseFuture {
    type Output = Result<ChatResponse, ChatError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Failed(e) => Poll::Ready(Err(e
                .take()
                .expect("ResponseFuture polled after completion"))),
            StateProj::Calling { call, model } => match call.poll(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Ok(mut response)) => {
                    response.set_model(std::mem::take(model));
                    Poll::Ready(Ok(response))
                }
                Poll::Ready(Err(mut e)) => {
                    e.set_model(std::mem::take(model));
                    Poll::Ready(Err(e))
                }
            },
        }
    }
}

impl fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
