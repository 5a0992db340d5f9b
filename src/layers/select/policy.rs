//! The routing function, behind one trait whether it is a closure or a service.

use std::error::Error as StdError;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

use tower::ServiceExt;
use tower_service::Service;

use crate::chat::ChatRequest;

/// Any error a routing function returns.
pub(crate) type BoxError = Box<dyn StdError + Send + Sync>;

/// The pending choice of a routing function.
pub(crate) type Choice = Pin<Box<dyn Future<Output = Result<String, BoxError>> + Send>>;

/// Picks a model for a request.
pub(crate) trait Selector: Send + Sync + 'static {
    fn select(&self, request: &ChatRequest) -> Choice;
}

/// An async closure: `Fn(&ChatRequest) -> impl Future<Output = Result<String, E>>`.
pub(crate) struct FnSelector<F>(pub(crate) F);

impl<F, Fut, E> Selector for FnSelector<F>
where
    F: Fn(&ChatRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<String, E>> + Send + 'static,
    E: Into<BoxError>,
{
    fn select(&self, request: &ChatRequest) -> Choice {
        let choice = (self.0)(request);
        Box::pin(async move { choice.await.map_err(Into::into) })
    }
}

/// A `Service<ChatRequest, Response = String>`. Behind a mutex only to be
/// `Sync`; each request calls its own clone.
pub(crate) struct ServiceSelector<T>(pub(crate) Mutex<T>);

impl<T> Selector for ServiceSelector<T>
where
    T: Service<ChatRequest, Response = String> + Clone + Send + 'static,
    T::Error: Into<BoxError>,
    T::Future: Send + 'static,
{
    fn select(&self, request: &ChatRequest) -> Choice {
        let service = self.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let request = request.clone();
        Box::pin(async move { service.oneshot(request).await.map_err(Into::into) })
    }
}
