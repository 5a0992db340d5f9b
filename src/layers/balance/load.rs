//! The load a balance layer measures of its candidates: calls in flight and
//! recent latency, for the strategies that rank by them.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::mem;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};

use futures_core::Stream;
use pin_project::pin_project;
use tokio::time::Instant;
use tower_service::Service;

use crate::chat::{ChatError, ChatStream, ErrorKind, StreamEvent};
use crate::{ChatRequest, ChatResponse};

/// How much a new latency sample weighs in the moving average.
const SMOOTHING: f64 = 0.25;

/// Each candidate's calls in flight and moving average of latency.
pub(crate) struct Load {
    models: HashMap<Arc<str>, ModelLoad>,
}

#[derive(Default)]
struct ModelLoad {
    in_flight: AtomicU32,
    /// Moving average, in seconds; `None` until the first sample.
    latency: Mutex<Option<f64>>,
}

impl Load {
    /// Measures `models`.
    pub(super) fn new(models: impl IntoIterator<Item = Arc<str>>) -> Self {
        let models = (models.into_iter())
            .map(|m| (m, ModelLoad::default()))
            .collect();
        Load { models }
    }

    /// Calls of `model` in flight from this process.
    pub(super) fn in_flight(&self, model: &str) -> u32 {
        (self.models.get(model)).map_or(0, |m| m.in_flight.load(Ordering::Relaxed))
    }

    /// The moving average of `model`'s latency, in seconds, once measured.
    pub(super) fn latency(&self, model: &str) -> Option<f64> {
        let m = self.models.get(model)?;
        *m.latency.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl fmt::Debug for Load {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Load")
            .field("models", &self.models.len())
            .finish_non_exhaustive()
    }
}

/// The inner service as a balance layer calls it: each call of a measured
/// candidate is in flight until it ends (a stream: until the stream ends),
/// and timed to its response.
#[derive(Clone, Debug)]
pub(crate) struct Measured<S> {
    inner: S,
    load: Option<Arc<Load>>,
}

impl<S> Measured<S> {
    pub(super) fn new(inner: S, load: Option<Arc<Load>>) -> Self {
        Measured { inner, load }
    }
}

impl<S> Service<ChatRequest> for Measured<S>
where
    S: Service<ChatRequest, Response = ChatResponse, Error = ChatError>,
{
    type Response = ChatResponse;
    type Error = ChatError;
    type Future = MeasuredFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ChatError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: ChatRequest) -> Self::Future {
        measure(&mut self.inner, self.load.as_ref(), request)
    }
}

/// Calls `inner` (polled ready) with `request`, measured when `load` has its model.
pub(super) fn measure<S>(
    inner: &mut S,
    load: Option<&Arc<Load>>,
    request: ChatRequest,
) -> MeasuredFuture<S::Future>
where
    S: Service<ChatRequest, Response = ChatResponse, Error = ChatError>,
{
    let guard = load.and_then(|load| {
        let (model, _) = load.models.get_key_value(request.model())?;
        Some(InFlight::start(load.clone(), model.clone()))
    });
    MeasuredFuture {
        future: inner.call(request),
        guard,
    }
}

/// The future of [`Measured`].
#[pin_project]
pub(crate) struct MeasuredFuture<F> {
    #[pin]
    future: F,
    guard: Option<InFlight>,
}

impl<F> Future for MeasuredFuture<F>
where
    F: Future<Output = Result<ChatResponse, ChatError>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.future.poll(cx));
        let Some(guard) = this.guard.take() else {
            return Poll::Ready(result);
        };
        Poll::Ready(guard.finish(result))
    }
}

impl<F> fmt::Debug for MeasuredFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MeasuredFuture")
            .field("measured", &self.guard.is_some())
            .finish_non_exhaustive()
    }
}

/// One measured call: in flight until dropped.
struct InFlight {
    load: Arc<Load>,
    model: Arc<str>,
    start: Instant,
}

impl InFlight {
    fn start(load: Arc<Load>, model: Arc<str>) -> Self {
        if let Some(m) = load.models.get(&model) {
            m.in_flight.fetch_add(1, Ordering::Relaxed);
        }
        InFlight {
            load,
            model,
            start: Instant::now(),
        }
    }

    /// Records the latency of an answer (or a timeout); a stream stays in
    /// flight until it ends.
    fn finish(
        self,
        mut result: Result<ChatResponse, ChatError>,
    ) -> Result<ChatResponse, ChatError> {
        let timed_out = matches!(&result, Err(e) if e.kind() == ErrorKind::Timeout);
        if result.is_ok() || timed_out {
            self.record_latency();
        }
        if let Ok(response) = &mut result {
            if let Some(stream) = response.stream_mut() {
                let inner = mem::replace(stream, ChatStream::from_items(Vec::new()));
                *stream = ChatStream::from_events(InFlightStream {
                    inner,
                    guard: Some(self),
                });
            }
        }
        result
    }

    fn record_latency(&self) {
        let Some(m) = self.load.models.get(&self.model) else {
            return;
        };
        let sample = self.start.elapsed().as_secs_f64();
        let mut avg = m.latency.lock().unwrap_or_else(|e| e.into_inner());
        *avg = Some(match *avg {
            None => sample,
            Some(avg) => avg + SMOOTHING * (sample - avg),
        });
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(m) = self.load.models.get(&self.model) {
            m.in_flight.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// A stream whose call is in flight until it ends or is dropped.
struct InFlightStream {
    inner: ChatStream,
    guard: Option<InFlight>,
}

impl Stream for InFlightStream {
    type Item = Result<StreamEvent, ChatError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let item = ready!(self.inner.poll_event(cx));
        if !matches!(item, Some(Ok(_))) {
            self.guard = None;
        }
        Poll::Ready(item)
    }
}
