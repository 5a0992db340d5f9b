use std::sync::Arc;
use std::time::Duration;

use tower_layer::Layer;

use super::{AdaptiveFirstToken, Budget, StreamDeadlines, Timeout};
use crate::chat::PerModel;

/// Applies [`Timeout`] to a service: a per-attempt deadline per model, or the
/// total budget of the whole call.
///
/// A zero duration is allowed and fails every call at once, without an
/// upstream call, which is what it literally asks for.
#[derive(Clone, Debug)]
pub struct TimeoutLayer {
    budget: Budget,
    streams: Option<Arc<PerModel<StreamDeadlines>>>,
    complete: Option<Arc<PerModel<Option<Duration>>>>,
    adaptive: Option<AdaptiveFirstToken>,
}

impl TimeoutLayer {
    /// The same per-attempt deadline for every model.
    pub fn attempt(timeout: Duration) -> Self {
        Self::per_model(PerModel::new(Some(timeout)))
    }

    /// A per-attempt deadline per model; `None` means no attempt deadline for
    /// that model (an earlier deadline stamped in the request still applies).
    ///
    /// ```
    /// use std::time::Duration;
    /// use llm_fallback::chat::PerModel;
    /// use llm_fallback::TimeoutLayer;
    ///
    /// let layer = TimeoutLayer::per_model(
    ///     PerModel::new(Some(Duration::from_secs(30)))
    ///         .with("openai/o1", Some(Duration::from_secs(120)))
    ///         .with("local/llama", None),
    /// );
    /// # let _ = layer;
    /// ```
    pub fn per_model(timeouts: PerModel<Option<Duration>>) -> Self {
        TimeoutLayer {
            budget: Budget::Attempt(Arc::new(timeouts)),
            streams: None,
            complete: None,
            adaptive: None,
        }
    }

    /// The budget of the whole call: the layer stamps `now + total` as the
    /// request's [`Deadline`](crate::chat::Deadline) (an earlier one is kept) so the
    /// inner layers respect it, and fails with [`TimeoutKind::Total`] when it
    /// passes. Use it outermost.
    ///
    /// [`TimeoutKind::Total`]: crate::chat::TimeoutKind::Total
    pub fn total(total: Duration) -> Self {
        TimeoutLayer {
            budget: Budget::Total(total),
            streams: None,
            complete: None,
            adaptive: None,
        }
    }

    /// Stream deadlines only (no attempt deadline), one set for every model
    /// or per model. See [`StreamDeadlines`] for what each bounds and the
    /// defaults.
    pub fn streams(deadlines: impl Into<PerModel<StreamDeadlines>>) -> Self {
        Self::per_model(PerModel::new(None)).with_stream_deadlines(deadlines)
    }

    /// Adds deadlines for streamed answers (headers, first token, idle gap,
    /// total), one set for every model or per model. Use it on the attempt
    /// layer, inside `Retry`, so each attempt gets its own.
    ///
    /// ```
    /// use std::time::Duration;
    /// use llm_fallback::layers::timeout::StreamDeadlines;
    /// use llm_fallback::chat::PerModel;
    /// use llm_fallback::TimeoutLayer;
    ///
    /// let layer = TimeoutLayer::attempt(Duration::from_secs(120)).with_stream_deadlines(
    ///     PerModel::new(StreamDeadlines::new())
    ///         .with("openai/gpt-4o-mini", StreamDeadlines::new()
    ///             .with_first_token(Duration::from_secs(10))
    ///             .with_idle(Duration::from_secs(10))),
    /// );
    /// # let _ = layer;
    /// ```
    pub fn with_stream_deadlines(
        mut self,
        deadlines: impl Into<PerModel<StreamDeadlines>>,
    ) -> Self {
        self.streams = Some(Arc::new(deadlines.into()));
        self
    }
}

impl TimeoutLayer {
    /// A per-attempt deadline per model for complete (non-streaming)
    /// answers only, in place of the attempt deadline; streams keep theirs
    /// (their first-token deadline bounds them). This is how a stack built
    /// from a config bounds complete answers by default
    /// ([`DEFAULT_ATTEMPT`](super::DEFAULT_ATTEMPT)).
    ///
    /// ```
    /// use std::time::Duration;
    /// use llm_fallback::layers::timeout::{StreamDeadlines, DEFAULT_ATTEMPT};
    /// use llm_fallback::chat::PerModel;
    /// use llm_fallback::TimeoutLayer;
    ///
    /// let layer = TimeoutLayer::streams(StreamDeadlines::new())
    ///     .with_complete_answers(PerModel::new(Some(DEFAULT_ATTEMPT)));
    /// # let _ = layer;
    /// ```
    pub fn with_complete_answers(mut self, deadlines: PerModel<Option<Duration>>) -> Self {
        self.complete = Some(Arc::new(deadlines));
        self
    }
}

impl TimeoutLayer {
    /// Learns each model's first-token deadline from its own streams, the
    /// configured one (set with
    /// [`with_stream_deadlines`](Self::with_stream_deadlines)) becoming a
    /// ceiling: see [`AdaptiveFirstToken`]. Streams of models with no
    /// first-token deadline are not bounded by it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use llm_fallback::layers::timeout::{AdaptiveFirstToken, StreamDeadlines};
    /// use llm_fallback::TimeoutLayer;
    ///
    /// let layer = TimeoutLayer::streams(
    ///     StreamDeadlines::new().with_first_token(Duration::from_secs(30)),
    /// )
    /// .with_adaptive_first_token(AdaptiveFirstToken::builder().build().unwrap());
    /// # let _ = layer;
    /// ```
    pub fn with_adaptive_first_token(mut self, adaptive: AdaptiveFirstToken) -> Self {
        self.adaptive = Some(adaptive);
        self
    }
}

impl<S> Layer<S> for TimeoutLayer {
    type Service = Timeout<S>;

    fn layer(&self, inner: S) -> Timeout<S> {
        Timeout {
            inner,
            budget: self.budget.clone(),
            streams: self.streams.clone(),
            complete: self.complete.clone(),
            adaptive: self.adaptive.clone(),
        }
    }
}
