//! Fallbacks that know why they run: the cause a fallback receives, and
//! the breaker's calls that run one.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use crate::breaker::CircuitBreaker;
use crate::error::{CallError, CircuitOpenError};

use crate::events::FallbackReason;

/// Why a fallback runs, as the fallback receives it: the breaker turned the
/// call away (and for how long it will), or the call ran and failed.
///
/// A `#[circuit_breaker]` fallback may take it after the function's own
/// arguments; [`CircuitBreaker::call_or_else`] always passes it.
///
/// ```
/// use circuit_runtime::{circuit_breaker, CircuitOpenError, FallbackCause};
///
/// #[derive(Debug)]
/// enum ApiError { Down, Unavailable { retry_after_secs: Option<u64> } }
///
/// #[circuit_breaker(name = "docs.cause", failure_threshold = 1, fallback = cached, fallback_on = "any_error")]
/// fn fetch(id: u32) -> Result<String, ApiError> {
///     Err(ApiError::Down)
/// }
///
/// fn cached(id: u32, cause: FallbackCause<'_, ApiError>) -> Result<String, ApiError> {
///     match cause {
///         FallbackCause::Rejected(open) => Err(ApiError::Unavailable {
///             retry_after_secs: open.retry_after_secs(),
///         }),
///         FallbackCause::Failed(error) => Ok(format!("cached {id} ({error:?})")),
///     }
/// }
///
/// assert_eq!(fetch(7).unwrap(), "cached 7 (Down)");
/// assert!(matches!(fetch(7), Err(ApiError::Unavailable { retry_after_secs: Some(60) })));
/// ```
#[derive(Debug)]
pub enum FallbackCause<'a, E> {
    /// The breaker rejected the call without running it: open, forced
    /// open, or half-open with every trial slot taken.
    Rejected(CircuitOpenError),
    /// The call ran and returned this error.
    Failed(&'a E),
}

impl<E> FallbackCause<'_, E> {
    /// The reason alone, as events and metrics report it.
    ///
    /// ```
    /// use circuit_runtime::{FallbackCause, FallbackReason};
    /// assert_eq!(FallbackCause::Failed(&"timeout").reason(), FallbackReason::Failed);
    /// ```
    pub fn reason(&self) -> FallbackReason {
        match self {
            FallbackCause::Rejected(_) => FallbackReason::Rejected,
            FallbackCause::Failed(_) => FallbackReason::Failed,
        }
    }

    /// How long until the breaker lets a trial through, when it rejected
    /// the call and that is known (see [`CircuitOpenError::retry_after`]).
    ///
    /// ```
    /// use circuit_runtime::FallbackCause;
    /// assert_eq!(FallbackCause::Failed(&"timeout").retry_after(), None);
    /// ```
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            FallbackCause::Rejected(rejection) => rejection.retry_after(),
            FallbackCause::Failed(_) => None,
        }
    }
}

impl<E> Clone for FallbackCause<'_, E> {
    fn clone(&self) -> Self {
        match self {
            FallbackCause::Rejected(rejection) => FallbackCause::Rejected(rejection.clone()),
            FallbackCause::Failed(error) => FallbackCause::Failed(error),
        }
    }
}

impl<E: fmt::Display> fmt::Display for FallbackCause<'_, E> {
    /// ```
    /// use circuit_runtime::FallbackCause;
    /// assert_eq!(FallbackCause::Failed(&"connection reset").to_string(), "the call failed: connection reset");
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FallbackCause::Rejected(rejection) => write!(f, "rejected: {rejection}"),
            FallbackCause::Failed(error) => write!(f, "the call failed: {error}"),
        }
    }
}

impl CircuitBreaker {
    /// Runs `f` through the breaker, as [`call`](Self::call) does, and
    /// runs `fallback` instead of returning a rejection or a failure,
    /// telling it which it was. Every `Err` counts as a failure.
    ///
    /// # Errors
    ///
    /// Whatever `fallback` returns.
    ///
    /// ```
    /// use circuit_runtime::{CircuitBreaker, Config, FallbackCause};
    ///
    /// let breaker = CircuitBreaker::new("prices", Config::builder().failure_threshold(1).build()?);
    /// let price = |cause: FallbackCause<'_, &str>| match cause {
    ///     FallbackCause::Failed(error) => Ok(format!("stale price ({error})")),
    ///     FallbackCause::Rejected(open) => Ok(format!("stale price (retry in {}s)", open.retry_after_secs().unwrap())),
    /// };
    /// assert_eq!(breaker.call_or_else(|| Err("timeout"), price)?, "stale price (timeout)");
    /// assert_eq!(breaker.call_or_else(|| Ok("12.5".into()), price)?, "stale price (retry in 60s)");
    /// assert_eq!(breaker.metrics().fallbacks_after_rejection, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn call_or_else<T, E>(
        &self,
        f: impl FnOnce() -> Result<T, E>,
        fallback: impl FnOnce(FallbackCause<'_, E>) -> Result<T, E>,
    ) -> Result<T, E> {
        match self.call(f) {
            Ok(value) => Ok(value),
            Err(error) => self.fall_back(&error, fallback),
        }
    }

    /// [`call_or_else`](Self::call_or_else) for a future: runs `fut`
    /// through the breaker, as [`call_async`](Self::call_async) does, and
    /// awaits the future `fallback` returns instead of returning a
    /// rejection or a failure.
    ///
    /// The fallback's future cannot borrow the cause: take from it what
    /// the future needs before returning it.
    ///
    /// # Errors
    ///
    /// Whatever `fallback`'s future returns.
    ///
    /// ```
    /// use circuit_runtime::{CircuitBreaker, Config, FallbackCause};
    /// # futures::executor::block_on(async {
    /// let breaker = CircuitBreaker::new("prices", Config::default());
    /// breaker.force_open();
    /// let price = breaker
    ///     .call_async_or_else(async { Ok::<_, std::io::Error>(12.5) }, |cause| {
    ///         let rejected = matches!(cause, FallbackCause::Rejected(_));
    ///         async move { Ok(if rejected { 0.0 } else { -1.0 }) }
    ///     })
    ///     .await?;
    /// assert_eq!(price, 0.0);
    /// # Ok::<(), std::io::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn call_async_or_else<T, E, F, G, Fallback>(
        &self,
        fut: F,
        fallback: G,
    ) -> Result<T, E>
    where
        F: Future<Output = Result<T, E>>,
        G: FnOnce(FallbackCause<'_, E>) -> Fallback,
        Fallback: Future<Output = Result<T, E>>,
    {
        match self.call_async(fut).await {
            Ok(value) => Ok(value),
            Err(error) => self.fall_back(&error, fallback).await,
        }
    }

    /// Counts the fallback `fallback`, and runs it with the cause of `error`.
    #[cold]
    fn fall_back<E, R>(
        &self,
        error: &CallError<E>,
        fallback: impl FnOnce(FallbackCause<'_, E>) -> R,
    ) -> R {
        let cause = error.cause();
        self.record_fallback(cause.reason());
        fallback(cause)
    }
}
