//! Retries through a breaker, in code: what `#[retry]` above
//! `#[circuit_breaker]` does.

use std::future::Future;

use super::classify::Classify;
use super::config::{AttemptTimeout, NoAttemptTimeout, RetryConfig};
use super::run::{classified, AttemptLimit};
use crate::__private::{
    every_error, retry_through, retry_through_async, retry_through_async_timed, RetryOutcome,
};
use crate::sleep::Sleeper;
use crate::{CallError, CircuitBreaker, TimeoutError};

/// How [`CircuitBreaker::call_async_retrying`] runs each attempt under a
/// configuration's time limit: as it is under [`NoAttemptTimeout`], cut
/// off under [`AttemptTimeout`] as the breaker's own `timeout` would be (a
/// failure and a slow call of the breaker, `E::from(TimeoutError)` to the
/// caller). Sealed.
pub trait LimitThrough<E>: AttemptLimit {
    /// Retries `attempt` through `breaker`.
    #[doc(hidden)]
    fn retry_through<'a, T, F, Fut, S>(
        config: &'a RetryConfig<Self>,
        breaker: &'a CircuitBreaker,
        sleeper: S,
        attempt: F,
    ) -> impl Future<Output = RetryOutcome<Result<T, E>>> + 'a
    where
        Self: Sized,
        F: FnMut() -> Fut + 'a,
        Fut: Future<Output = Result<T, E>> + 'a,
        S: Sleeper + 'a,
        T: 'a,
        E: 'a;
}

impl<E: Classify> LimitThrough<E> for NoAttemptTimeout {
    fn retry_through<'a, T, F, Fut, S>(
        config: &'a RetryConfig<Self>,
        breaker: &'a CircuitBreaker,
        sleeper: S,
        attempt: F,
    ) -> impl Future<Output = RetryOutcome<Result<T, E>>> + 'a
    where
        F: FnMut() -> Fut + 'a,
        Fut: Future<Output = Result<T, E>> + 'a,
        S: Sleeper + 'a,
        T: 'a,
        E: 'a,
    {
        retry_through_async(breaker, config, sleeper, classified, every_error, attempt)
    }
}

impl<E: Classify + From<TimeoutError>> LimitThrough<E> for AttemptTimeout {
    fn retry_through<'a, T, F, Fut, S>(
        config: &'a RetryConfig<Self>,
        breaker: &'a CircuitBreaker,
        sleeper: S,
        attempt: F,
    ) -> impl Future<Output = RetryOutcome<Result<T, E>>> + 'a
    where
        F: FnMut() -> Fut + 'a,
        Fut: Future<Output = Result<T, E>> + 'a,
        S: Sleeper + 'a,
        T: 'a,
        E: 'a,
    {
        let limit = config.attempt_timeout();
        retry_through_async_timed(
            breaker,
            config,
            sleeper,
            limit,
            E::from,
            classified,
            every_error,
            attempt,
        )
    }
}

impl CircuitBreaker {
    /// Runs `attempt` through this breaker until it succeeds, retrying
    /// errors whose [`ErrorCategory`](super::ErrorCategory) is retryable
    /// as `config` says, sleeping on this thread between attempts. Every
    /// attempt is recorded by the breaker, each retry is counted in its
    /// [`Metrics::retry_attempts`](crate::Metrics::retry_attempts) and the
    /// call in [`Metrics::retry_calls`](crate::Metrics::retry_calls), and a
    /// rejection ends the retries at once: the breaker says the dependency
    /// is down.
    ///
    /// # Errors
    ///
    /// [`CallError::Rejected`] when the breaker rejects an attempt, or
    /// [`CallError::Failed`] with the last attempt's error once retrying
    /// stops.
    ///
    /// ```
    /// use std::time::Duration;
    /// use circuit_runtime::retry::RetryConfig;
    /// use circuit_runtime::{CircuitBreaker, Config};
    ///
    /// let breaker = CircuitBreaker::new("inventory", Config::default());
    /// let config = RetryConfig::builder().base_delay(Duration::ZERO).build()?;
    /// let mut attempts = 0;
    /// let stock = breaker.call_retrying(&config, || {
    ///     attempts += 1;
    ///     if attempts < 3 {
    ///         Err(std::io::Error::from(std::io::ErrorKind::ConnectionReset))
    ///     } else {
    ///         Ok(12)
    ///     }
    /// });
    /// assert_eq!(stock.unwrap(), 12);
    /// let metrics = breaker.metrics();
    /// assert_eq!((metrics.failed_calls, metrics.retry_attempts), (2, 2));
    /// assert_eq!(metrics.retry_calls.successful_with_retry, 1);
    /// # Ok::<(), circuit_runtime::ConfigError>(())
    /// ```
    pub fn call_retrying<T, E, F>(
        &self,
        config: &RetryConfig,
        attempt: F,
    ) -> Result<T, CallError<E>>
    where
        E: Classify,
        F: FnMut() -> Result<T, E>,
    {
        settled(retry_through(
            self,
            config,
            classified,
            every_error,
            attempt,
        ))
    }

    /// The async [`call_retrying`](Self::call_retrying): waits with
    /// `sleeper` between attempts, on any executor. With an
    /// [`attempt_timeout`](super::RetryConfigBuilder::attempt_timeout),
    /// each attempt still running after it is cut off as the breaker's own
    /// `timeout` would cut it: a failure and a slow call of the breaker,
    /// and `E::from(TimeoutError)`.
    ///
    /// # Errors
    ///
    /// As [`call_retrying`](Self::call_retrying).
    ///
    /// ```
    /// use std::time::Duration;
    /// use circuit_runtime::retry::RetryConfig;
    /// use circuit_runtime::{CallError, CircuitBreaker, Config};
    ///
    /// # futures::executor::block_on(async {
    /// let breaker = CircuitBreaker::new("quotes", Config::builder().failure_threshold(2).build()?);
    /// let config = RetryConfig::builder().max_retries(5).build()?;
    /// let sleep_at_once = |_| std::future::ready(()); // a real service passes its runtime's sleep
    /// let refused = || async { Err::<(), _>(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)) };
    /// let result = breaker.call_async_retrying(&config, sleep_at_once, refused).await;
    /// assert!(matches!(result, Err(CallError::Rejected(_))), "the breaker opened after two failures");
    /// assert_eq!(breaker.metrics().retry_attempts, 2);
    /// # Ok::<(), circuit_runtime::ConfigError>(())
    /// # }).unwrap();
    /// ```
    pub async fn call_async_retrying<T, E, F, Fut, S, L>(
        &self,
        config: &RetryConfig<L>,
        sleeper: S,
        attempt: F,
    ) -> Result<T, CallError<E>>
    where
        E: Classify,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        S: Sleeper,
        L: LimitThrough<E>,
    {
        settled(L::retry_through(config, self, sleeper, attempt).await)
    }
}

fn settled<T, E>(outcome: RetryOutcome<Result<T, E>>) -> Result<T, CallError<E>> {
    match outcome {
        RetryOutcome::Succeeded(result) | RetryOutcome::Failed(result) => {
            result.map_err(CallError::Failed)
        }
        RetryOutcome::Rejected(rejection) => Err(CallError::Rejected(rejection)),
    }
}
