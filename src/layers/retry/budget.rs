//! A retry budget shared by every clone of a [`Retry`](super::Retry) stack.
//!
//! A retry count alone turns a degraded provider into a storm: with two
//! retries each, every failing call becomes three upstream calls, just when
//! the provider can least take them. A budget caps retries to a ratio of the
//! calls made recently (plus a small floor for quiet clients), so a few
//! unlucky calls still get retried while a broken provider sees hardly more
//! traffic than without retries, and fallbacks act at once. This is
//! `tower::retry::budget::TpsBudget`, reused, with validation in front of it.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tower::retry::budget::{Budget, TpsBudget};

use crate::chat::ConfigError;

/// A shared limit on retries: each call deposits into it, each retry
/// withdraws, and a retry the budget cannot pay for is not made.
///
/// Default: a 10 s window, a floor of 10 retries per second, and retries up
/// to 20 % of calls (tower's defaults).
///
/// ```
/// use std::time::Duration;
/// use llm_fallback::layers::retry::RetryBudget;
///
/// // At most 1 retry per 10 calls in the last 10 s, plus 1 per second.
/// let budget = RetryBudget::new(Duration::from_secs(10), 1, 0.1).unwrap();
/// # let _ = budget;
/// let bad = RetryBudget::new(Duration::from_secs(10), 1, f32::NAN).unwrap_err();
/// assert!(bad.to_string().contains("NaN"));
/// ```
#[derive(Clone)]
pub struct RetryBudget(Arc<dyn Budget + Send + Sync>);

impl RetryBudget {
    /// A budget allowing `ratio` retries per call made within the last
    /// `window` (1 to 60 s), plus `min_per_second` retries per second in any
    /// case. A ratio of 0.2 allows one retry per 5 calls; ratios below 1 are
    /// applied as one retry per `1 / ratio` calls, rounded down (as tower does).
    pub fn new(window: Duration, min_per_second: u32, ratio: f32) -> Result<Self, ConfigError> {
        Self::checked("retry.budget", window, min_per_second, ratio)
    }

    /// [`new`](Self::new), with mistakes reported under `section` (e.g.
    /// `retry.budget`), for the other budgets built on this one.
    pub(crate) fn checked(
        section: &str,
        window: Duration,
        min_per_second: u32,
        ratio: f32,
    ) -> Result<Self, ConfigError> {
        let mut errors = ConfigError::default();
        if window < Duration::from_secs(1) || window > Duration::from_secs(60) {
            errors.push(
                format!("{section}.window"),
                format!("window {window:?} must be between 1 s and 60 s"),
            );
        }
        if !(0.0..=1000.0).contains(&ratio) {
            errors.push(
                format!("{section}.ratio"),
                format!("ratio {ratio} must be a number between 0 and 1000"),
            );
        }
        if min_per_second >= i32::MAX as u32 {
            errors.push(
                format!("{section}.min_per_second"),
                format!("min_per_second {min_per_second} is too large"),
            );
        }
        errors.into_result(())?;
        Ok(Self::from_budget(TpsBudget::new(
            window,
            min_per_second,
            ratio,
        )))
    }

    /// Any `tower` budget, e.g. one shared with other retrying clients.
    pub fn from_budget(budget: impl Budget + Send + Sync + 'static) -> Self {
        RetryBudget(Arc::new(budget))
    }

    /// Records a call.
    pub(crate) fn deposit(&self) {
        self.0.deposit();
    }

    /// Pays for one retry; `false` when the budget is spent.
    pub(crate) fn withdraw(&self) -> bool {
        self.0.withdraw()
    }
}

impl Default for RetryBudget {
    fn default() -> Self {
        Self::from_budget(TpsBudget::default())
    }
}

impl fmt::Debug for RetryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryBudget").finish_non_exhaustive()
    }
}
