//! Retrying failed calls: error classification, exponential backoff with
//! jitter, a time limit, and retry budgets shared across call sites.
//!
//! ```
//! use std::time::Duration;
//! use circuit_runtime::retry::{retry, RetryConfig};
//! use circuit_runtime::ManualClock;
//!
//! let clock = ManualClock::new(); // a test's clock: the waits move it
//! let config = RetryConfig::builder()
//!     .max_retries(2)
//!     .base_delay(Duration::from_millis(100))
//!     .clock(clock.clone())
//!     .build()?;
//! let mut calls = 0;
//! let result = retry(&config, || {
//!     calls += 1;
//!     Err::<(), _>(std::io::Error::from(std::io::ErrorKind::ConnectionRefused))
//! });
//! assert!(result.is_err());
//! assert_eq!(calls, 3, "the first attempt and two retries");
//! # Ok::<(), circuit_runtime::ConfigError>(())
//! ```
//!
//! Errors say whether they are worth retrying through [`Classify`]
//! (implemented for `std::io::Error`, for [`CircuitOpenError`](crate::CircuitOpenError),
//! which is never retried, and for [`CallError`](crate::CallError)); others
//! go through [`retry_if`] with a predicate. Delays grow from `base_delay`
//! by `exponential_base` up to `max_delay`, spread by [`Jitter`], and never
//! exceed `max_delay`, a `retry_after` hint included. `max_elapsed` bounds
//! the attempts and delays together, and a [`RetryBudget`] bounds how much
//! retries may add to a dependency's load.

mod budget;
mod classify;
mod config;
mod run;
mod through;

pub use through::LimitThrough;

pub use crate::sleep::Sleeper;
pub use budget::{RetryBudget, RetryBudgetBuilder};
pub use classify::{classify_error, should_retry, Classify, ErrorCategory, Severity};
pub use config::{
    AttemptTimeout, Delays, Jitter, NoAttemptTimeout, RetryConfig, RetryConfigBuilder,
};
pub(crate) use run::{
    classified, limited, record_first_attempt, retry_async_judged, retry_blocking, start, Attempts,
    Borrowed,
};
pub use run::{
    retry, retry_async, retry_async_if, retry_if, AttemptLimit, LimitAttempt, RetryVerdict,
};

/// Sleeps with `tokio::time::sleep` (feature `tokio`).
///
/// ```
/// use circuit_runtime::retry::{retry_async, RetryConfig, TokioSleeper};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let config = RetryConfig::default();
/// let answer = retry_async(&config, TokioSleeper, || async { Ok::<_, std::io::Error>(1) }).await;
/// assert_eq!(answer.unwrap(), 1);
/// # }
/// ```
#[cfg(feature = "tokio")]
#[derive(Clone, Copy, Debug, Default)]
pub struct TokioSleeper;

#[cfg(feature = "tokio")]
impl Sleeper for TokioSleeper {
    type Sleep = tokio::time::Sleep;

    fn sleep(&self, delay: std::time::Duration) -> tokio::time::Sleep {
        tokio::time::sleep(delay)
    }
}
