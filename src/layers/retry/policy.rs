//! The pluggable decision: retry this failure or not, and after how long.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::backoff::Backoff;
use crate::chat::{ChatError, PerModel};
use crate::rng::SharedRng;

/// Decides, after a failed attempt, whether to call the same model again and
/// how long to wait first.
///
/// The [`Retry`](super::Retry) layer applies the request's deadline and the
/// shared [`RetryBudget`](super::RetryBudget) after the policy, so a policy
/// only says what it would like; it never has to check them itself.
///
/// [`ExponentialRetry`] is the built-in policy. Closures
/// `Fn(&RetryContext<'_>) -> Decision` are policies too:
///
/// ```
/// use std::time::Duration;
/// use llm_fallback::layers::retry::{Decision, RetryContext, RetryLayer};
///
/// // Retry anything once, after 1 s, except on the last model of the day.
/// let layer = RetryLayer::builder()
///     .policy(|ctx: &RetryContext<'_>| {
///         if ctx.attempt() == 1 && ctx.model() != "local/fallback" {
///             Decision::Retry(Duration::from_secs(1))
///         } else {
///             Decision::Stop("custom policy says no")
///         }
///     })
///     .build()
///     .unwrap();
/// # let _ = layer;
/// ```
pub trait RetryPolicy: Send + Sync + 'static {
    /// The decision for the failure described by `ctx`.
    fn decide(&self, ctx: &RetryContext<'_>) -> Decision;
}

impl<F> RetryPolicy for F
where
    F: Fn(&RetryContext<'_>) -> Decision + Send + Sync + 'static,
{
    fn decide(&self, ctx: &RetryContext<'_>) -> Decision {
        self(ctx)
    }
}

/// What a [`RetryPolicy`] decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Call the model again after this delay.
    Retry(Duration),
    /// Return the error; the reason goes to the `tracing` event.
    Stop(&'static str),
}

/// Everything a policy may look at when an attempt failed.
#[derive(Debug)]
pub struct RetryContext<'a> {
    model: &'a str,
    error: &'a ChatError,
    attempt: u32,
    previous_delay: Option<Duration>,
    elapsed: Duration,
    deadline: Option<Instant>,
    rng: &'a SharedRng,
}

impl<'a> RetryContext<'a> {
    /// The failure of attempt number `attempt` (1 for the first call) of
    /// `model`. The layer builds these; the constructor is public for testing
    /// policies.
    pub fn new(model: &'a str, error: &'a ChatError, attempt: u32, rng: &'a SharedRng) -> Self {
        RetryContext {
            model,
            error,
            attempt,
            previous_delay: None,
            elapsed: Duration::ZERO,
            deadline: None,
            rng,
        }
    }

    /// Sets the delay waited before the failed attempt.
    pub fn with_previous_delay(mut self, delay: Option<Duration>) -> Self {
        self.previous_delay = delay;
        self
    }

    /// Sets the time since the first attempt started.
    pub fn with_elapsed(mut self, elapsed: Duration) -> Self {
        self.elapsed = elapsed;
        self
    }

    /// Sets the call's deadline.
    pub fn with_deadline(mut self, deadline: Option<Instant>) -> Self {
        self.deadline = deadline;
        self
    }

    /// The model called, `provider/model`.
    pub fn model(&self) -> &'a str {
        self.model
    }

    /// The failure.
    pub fn error(&self) -> &'a ChatError {
        self.error
    }

    /// The number of the attempt that failed: 1 for the first call, so also
    /// the number of retries made once this one is.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// How many retries were already made (`attempt - 1`).
    pub fn retries(&self) -> u32 {
        self.attempt.saturating_sub(1)
    }

    /// The delay waited before the failed attempt (`None` for the first).
    pub fn previous_delay(&self) -> Option<Duration> {
        self.previous_delay
    }

    /// Time since the first attempt started.
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }

    /// The call's deadline, if an outer `Timeout` stamped one.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// The layer's random source, for jitter.
    pub fn rng(&self) -> &'a SharedRng {
        self.rng
    }
}

type Predicate = Arc<dyn Fn(&ChatError) -> bool + Send + Sync>;

/// The built-in policy: retries retryable failures up to `max_retries` times
/// per model, waiting per the model's [`Backoff`] and at least as long as the
/// provider's `Retry-After`.
///
/// Defaults: 2 retries, [`Backoff::default`], retryable kinds per
/// [`ErrorKind::is_retryable`](crate::ErrorKind::is_retryable) (rate limits,
/// server and connection errors), and `Retry-After` honoured up to 10 s. A
/// provider that asks for longer is not retried: the error goes back at once
/// so a fallback can serve the call now rather than much later.
#[derive(Clone)]
pub struct ExponentialRetry {
    pub(super) max_retries: PerModel<u32>,
    pub(super) backoff: PerModel<Backoff>,
    pub(super) max_retry_after: Duration,
    pub(super) retry_if: Option<Predicate>,
}

impl ExponentialRetry {
    /// The default number of retries per model: 2.
    pub const DEFAULT_MAX_RETRIES: u32 = 2;
    /// The default longest `Retry-After` waited for: 10 s.
    pub const DEFAULT_MAX_RETRY_AFTER: Duration = Duration::from_secs(10);

    /// Up to `max_retries` retries (one value, or one per model; 0 = none).
    pub fn new(max_retries: impl Into<PerModel<u32>>) -> Self {
        ExponentialRetry {
            max_retries: max_retries.into(),
            backoff: PerModel::new(Backoff::default()),
            max_retry_after: Self::DEFAULT_MAX_RETRY_AFTER,
            retry_if: None,
        }
    }

    /// Sets the backoff (one, or one per model).
    pub fn with_backoff(mut self, backoff: impl Into<PerModel<Backoff>>) -> Self {
        self.backoff = backoff.into();
        self
    }

    /// Sets the longest `Retry-After` worth waiting for (default 10 s).
    pub fn with_max_retry_after(mut self, max: Duration) -> Self {
        self.max_retry_after = max;
        self
    }

    /// Retries the failures `predicate` accepts instead of the retryable kinds.
    pub fn retry_if(
        mut self,
        predicate: impl Fn(&ChatError) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.retry_if = Some(Arc::new(predicate));
        self
    }

    /// The retries allowed for `model`.
    pub fn max_retries(&self, model: &str) -> u32 {
        *self.max_retries.get(model)
    }

    /// The backoff of `model`.
    pub fn backoff(&self, model: &str) -> &Backoff {
        self.backoff.get(model)
    }

    /// The longest `Retry-After` waited for.
    pub fn max_retry_after(&self) -> Duration {
        self.max_retry_after
    }

    /// Whether `error` is worth another try of the same model.
    pub fn is_retryable(&self, error: &ChatError) -> bool {
        match &self.retry_if {
            Some(predicate) => predicate(error),
            None => error.kind().is_retryable(),
        }
    }
}

impl Default for ExponentialRetry {
    fn default() -> Self {
        ExponentialRetry::new(Self::DEFAULT_MAX_RETRIES)
    }
}

impl RetryPolicy for ExponentialRetry {
    fn decide(&self, ctx: &RetryContext<'_>) -> Decision {
        let error = ctx.error();
        if !self.is_retryable(error) {
            return Decision::Stop("not retryable");
        }
        if ctx.retries() >= self.max_retries(ctx.model()) {
            return Decision::Stop("retries exhausted");
        }
        let delay = self
            .backoff(ctx.model())
            .delay(ctx.retries(), ctx.previous_delay(), ctx.rng());
        match error.retry_after() {
            Some(asked) if asked > self.max_retry_after => {
                Decision::Stop("Retry-After longer than the maximum")
            }
            Some(asked) => Decision::Retry(delay.max(asked)),
            None => Decision::Retry(delay),
        }
    }
}

impl fmt::Debug for ExponentialRetry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExponentialRetry")
            .field("max_retries", &self.max_retries)
            .field("backoff", &self.backoff)
            .field("max_retry_after", &self.max_retry_after)
            .field("retry_if", &self.retry_if.as_ref().map(|_| "custom"))
            .finish()
    }
}
