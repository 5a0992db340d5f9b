use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tower_layer::Layer;
use tower_service::Service;

use super::policy::{BoxError, FnSelector, Selector, ServiceSelector};
use super::SelectModel;
use crate::chat::{ChatRequest, ConfigError};

/// What every [`SelectModel`] built from one layer shares.
pub(crate) struct Shared {
    pub(crate) selector: Box<dyn Selector>,
    pub(crate) candidates: Box<[String]>,
    pub(crate) default_model: String,
    pub(crate) timeout: Duration,
}

impl Shared {
    /// Why `model` cannot be used, if it cannot.
    pub(crate) fn check(&self, model: &str) -> Result<(), String> {
        if model.is_empty() {
            Err("the routing function chose an empty model id".to_owned())
        } else if !self.candidates.is_empty() && !self.candidates.iter().any(|c| c == model) {
            Err(format!(
                "the routing function chose {model:?}, which is not a candidate"
            ))
        } else {
            Ok(())
        }
    }
}

/// Applies [`SelectModel`] to a service. Cheap to clone: the routing function is shared.
#[derive(Clone)]
pub struct SelectModelLayer {
    pub(super) shared: Arc<Shared>,
}

impl SelectModelLayer {
    /// The default budget of the routing function.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

    /// Routes with an async function of the request. It receives a reference:
    /// copy what it needs before its `async` block.
    ///
    /// ```
    /// use llm_fallback::{ChatRequest, SelectModelLayer};
    /// let layer = SelectModelLayer::from_fn(|request: &ChatRequest| {
    ///     let long = request.messages().len() > 20;
    ///     async move {
    ///         let model = if long { "anthropic/claude-3-5-sonnet-20240620" } else { "openai/gpt-4o-mini" };
    ///         Ok::<_, std::convert::Infallible>(model.to_owned())
    ///     }
    /// })
    /// .candidates(["openai/gpt-4o-mini", "anthropic/claude-3-5-sonnet-20240620"])
    /// .build()
    /// .unwrap();
    /// # let _ = layer;
    /// ```
    pub fn from_fn<F, Fut, E>(select: F) -> SelectModelBuilder
    where
        F: Fn(&ChatRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<String, E>> + Send + 'static,
        E: Into<BoxError>,
    {
        SelectModelBuilder::new(Box::new(FnSelector(select)))
    }

    /// Routes with a service answering the model id for a request (e.g. a
    /// client of a routing API). Each request calls a clone of it.
    pub fn from_service<T>(select: T) -> SelectModelBuilder
    where
        T: Service<ChatRequest, Response = String> + Clone + Send + 'static,
        T::Error: Into<BoxError>,
        T::Future: Send + 'static,
    {
        SelectModelBuilder::new(Box::new(ServiceSelector(Mutex::new(select))))
    }
}

impl<S> Layer<S> for SelectModelLayer {
    type Service = SelectModel<S>;

    fn layer(&self, inner: S) -> SelectModel<S> {
        SelectModel::new(inner, self.clone())
    }
}

impl fmt::Debug for SelectModelLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.shared.fmt(f)
    }
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SelectModel")
            .field("candidates", &self.candidates)
            .field("default_model", &self.default_model)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Builds a [`SelectModelLayer`]. Defaults: no restriction on the choice, a
/// 5 s budget, and the first candidate as the default model.
pub struct SelectModelBuilder {
    selector: Box<dyn Selector>,
    candidates: Vec<String>,
    default_model: Option<String>,
    timeout: Duration,
}

impl SelectModelBuilder {
    fn new(selector: Box<dyn Selector>) -> Self {
        SelectModelBuilder {
            selector,
            candidates: Vec::new(),
            default_model: None,
            timeout: SelectModelLayer::DEFAULT_TIMEOUT,
        }
    }

    /// The models the function may choose (model ids, or aliases that a layer
    /// below resolves). A choice outside the list is treated as a failure of
    /// the function. The first is the default model unless
    /// [`default_model`](Self::default_model) says otherwise.
    pub fn candidates<I>(mut self, models: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.candidates = models.into_iter().map(Into::into).collect();
        self
    }

    /// The model used when the function fails or runs out of time.
    pub fn default_model(mut self, model: impl Into<String>) -> Self {
        self.default_model = Some(model.into());
        self
    }

    /// How long the function may take (default: 5 s). A request's own
    /// deadline, if earlier, bounds it too.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The layer, or every problem found: no default model, an empty or
    /// spaced id, a zero timeout.
    pub fn build(self) -> Result<SelectModelLayer, ConfigError> {
        let mut errors = ConfigError::default();
        for (i, model) in self.candidates.iter().enumerate() {
            if model.is_empty() || model.chars().any(char::is_whitespace) {
                errors.push(
                    format!("select.candidates[{i}]"),
                    format!("model id {model:?} is empty or contains white space"),
                );
            }
        }
        let default_model = self
            .default_model
            .or_else(|| self.candidates.first().cloned());
        match &default_model {
            None => errors.push(
                "select.default_model",
                "no default model: give one, or candidates (the first is the default)",
            ),
            Some(m) if m.is_empty() || m.chars().any(char::is_whitespace) => errors.push(
                "select.default_model",
                format!("model id {m:?} is empty or contains white space"),
            ),
            Some(_) => {}
        }
        if self.timeout.is_zero() {
            errors.push(
                "select.timeout",
                "the timeout is zero: the function could never answer",
            );
        }
        let shared = Shared {
            selector: self.selector,
            candidates: self.candidates.into(),
            default_model: default_model.unwrap_or_default(),
            timeout: self.timeout,
        };
        errors.into_result(SelectModelLayer {
            shared: Arc::new(shared),
        })
    }
}

impl fmt::Debug for SelectModelBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SelectModelBuilder")
            .field("candidates", &self.candidates)
            .field("default_model", &self.default_model)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}
