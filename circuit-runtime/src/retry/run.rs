//! Running a call with retries, sync or async.

use std::future::Future;
use std::time::Duration;

use super::classify::Classify;
use super::config::{AttemptTimeout, Delays, NoAttemptTimeout, RetryConfig};
use std::time::Instant;

use crate::clock::Clock;
use crate::sleep::{Deadline, Sleeper};
use crate::TimeoutError;

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::NoAttemptTimeout {}
    impl Sealed for super::AttemptTimeout {}
}

/// The time limit of a retry's attempts: [`NoAttemptTimeout`] or
/// [`AttemptTimeout`]. Sealed.
pub trait AttemptLimit: sealed::Sealed {
    /// The limit, if any.
    fn limit(&self) -> Option<Duration>;
}

impl AttemptLimit for NoAttemptTimeout {
    fn limit(&self) -> Option<Duration> {
        None
    }
}

impl AttemptLimit for AttemptTimeout {
    fn limit(&self) -> Option<Duration> {
        Some(self.0)
    }
}

/// A time limit an attempt failing with `E` can be held to: any error
/// under [`NoAttemptTimeout`], an error that is `From<TimeoutError>` under
/// [`AttemptTimeout`]. Sealed.
pub trait LimitAttempt<E>: AttemptLimit {
    /// `attempt`, cut off by this limit as `sleeper` measures it.
    #[doc(hidden)]
    fn limit_attempt<T, F, S>(&self, sleeper: &S, attempt: F) -> impl Future<Output = Result<T, E>>
    where
        F: Future<Output = Result<T, E>>,
        S: Sleeper;
}

impl<E> LimitAttempt<E> for NoAttemptTimeout {
    fn limit_attempt<T, F, S>(&self, _: &S, attempt: F) -> impl Future<Output = Result<T, E>>
    where
        F: Future<Output = Result<T, E>>,
        S: Sleeper,
    {
        attempt
    }
}

impl<E: From<TimeoutError>> LimitAttempt<E> for AttemptTimeout {
    fn limit_attempt<T, F, S>(&self, sleeper: &S, attempt: F) -> impl Future<Output = Result<T, E>>
    where
        F: Future<Output = Result<T, E>>,
        S: Sleeper,
    {
        let limit = self.0;
        let limited = limited(sleeper, limit, attempt);
        async move {
            match limited.await {
                Some(outcome) => outcome,
                None => Err(E::from(TimeoutError::new("", limit))),
            }
        }
    }
}

/// What a failed attempt means for the next one: whether to retry, and
/// the dependency's `retry_after` hint. Not public API.
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub struct RetryVerdict {
    /// Whether another attempt can help.
    pub retry: bool,
    /// How long the dependency asked to wait, if it did.
    pub hint: Option<Duration>,
    /// The error's category, when it classifies itself.
    pub category: Option<super::ErrorCategory>,
}

/// One retried call's bookkeeping: its delays, its time, its budget.
pub(crate) struct Attempts<'a, L = NoAttemptTimeout> {
    config: &'a RetryConfig<L>,
    delays: Delays,
    /// When the first attempt began, on the configuration's clock; read
    /// only when `max_elapsed` asks for it.
    started: Option<Instant>,
    /// Attempts made so far.
    made: u32,
    budget_spent: bool,
}

impl<'a, L> Attempts<'a, L> {
    /// The bookkeeping of a call whose first attempt began at `started`
    /// (see [`start`]) and failed.
    pub(crate) fn new(config: &'a RetryConfig<L>, started: Option<Instant>) -> Self {
        Attempts {
            config,
            delays: config.delays(),
            started,
            made: 1,
            budget_spent: false,
        }
    }

    /// Attempts made so far.
    pub(crate) fn made(&self) -> u32 {
        self.made
    }

    /// Whether the last `next_wait` gave up because the budget was spent.
    pub(crate) fn budget_spent(&self) -> bool {
        self.budget_spent
    }

    /// The wait before the next attempt, or `None` to give up with the
    /// last error: not retryable, no retries left, past `max_elapsed`, or
    /// the budget spent.
    pub(crate) fn next_wait(&mut self, verdict: &RetryVerdict) -> Option<Duration> {
        if !verdict.retry || self.made > self.config.max_retries {
            return None;
        }
        let delay = self.delays.next_delay(verdict.hint);
        if let Some(limit) = self.config.max_elapsed {
            let elapsed = self.started.map_or(Duration::ZERO, |started| {
                now(&self.config.clock).saturating_duration_since(started)
            });
            if elapsed.saturating_add(delay) > limit {
                return None;
            }
        }
        if let Some(budget) = &self.config.budget {
            if !budget.try_retry() {
                self.budget_spent = true;
                return None;
            }
        }
        self.made += 1;
        Some(delay)
    }

    /// Waits `delay` on this thread: on a manual clock, by moving it.
    pub(crate) fn sleep_blocking(&self, delay: Duration) {
        match &self.config.clock {
            Clock::Manual(clock) => clock.advance(delay),
            Clock::Monotonic => std::thread::sleep(delay),
        }
    }
}

/// When a call's first attempt begins, if `max_elapsed` will need it:
/// the limit counts the first attempt's own time too.
#[inline]
pub(crate) fn start<L>(config: &RetryConfig<L>) -> Option<Instant> {
    config.max_elapsed.map(|_| now(&config.clock))
}

/// The time on `clock`.
fn now(clock: &Clock) -> Instant {
    match clock {
        Clock::Manual(clock) => clock.now(),
        Clock::Monotonic => Instant::now(),
    }
}

/// Every first attempt earns its budget a share of a retry, whether or
/// not it fails.
#[inline]
pub(crate) fn record_first_attempt<L>(config: &RetryConfig<L>) {
    if let Some(budget) = &config.budget {
        budget.record_first_attempt();
    }
}

pub(crate) fn classified<E: Classify>(error: &E) -> RetryVerdict {
    let category = error.category();
    RetryVerdict {
        retry: category.is_retryable(),
        hint: error.retry_after(),
        category: Some(category),
    }
}

/// Runs `attempt` until it succeeds, retrying errors whose
/// [`ErrorCategory`](super::ErrorCategory) is retryable, as `config` says;
/// sleeps on this thread between attempts (on a manual clock, by moving
/// it). Returns the first success, or the last error.
///
/// # Errors
///
/// The last attempt's error, once retrying stops: not retryable, no
/// retries left, past `max_elapsed`, or the budget spent.
///
/// ```
/// use std::time::Duration;
/// use circuit_runtime::retry::{retry, RetryConfig};
/// use circuit_runtime::ManualClock;
///
/// let clock = ManualClock::new();
/// let config = RetryConfig::builder().jitter(false).clock(clock.clone()).build()?;
/// let start = clock.now();
/// let mut attempts = 0;
/// let answer = retry(&config, || {
///     attempts += 1;
///     if attempts < 3 {
///         Err(std::io::Error::from(std::io::ErrorKind::ConnectionReset))
///     } else {
///         Ok(42)
///     }
/// });
/// assert_eq!(answer.unwrap(), 42);
/// assert_eq!(clock.now() - start, Duration::from_secs(3), "waited 1 s, then 2 s, on the manual clock");
/// # Ok::<(), circuit_runtime::ConfigError>(())
/// ```
pub fn retry<T, E, F>(config: &RetryConfig, attempt: F) -> Result<T, E>
where
    E: Classify,
    F: FnMut() -> Result<T, E>,
{
    retry_blocking(config, classified, attempt)
}

/// [`retry`] for errors that do not implement [`Classify`]: `should_retry`
/// decides which errors are worth another attempt.
///
/// # Errors
///
/// As [`retry`].
///
/// ```
/// use circuit_runtime::retry::{retry_if, RetryConfig};
/// let config = RetryConfig::builder().max_retries(0).build()?;
/// let result = retry_if(&config, |status: &u16| *status >= 500, || Err::<(), _>(503));
/// assert_eq!(result, Err(503), "no retries allowed");
/// # Ok::<(), circuit_runtime::ConfigError>(())
/// ```
pub fn retry_if<T, E, F>(
    config: &RetryConfig,
    should_retry: impl Fn(&E) -> bool,
    attempt: F,
) -> Result<T, E>
where
    F: FnMut() -> Result<T, E>,
{
    retry_blocking(
        config,
        |error| RetryVerdict {
            retry: should_retry(error),
            hint: None,
            category: None,
        },
        attempt,
    )
}

pub(crate) fn retry_blocking<T, E, F>(
    config: &RetryConfig,
    judge: impl Fn(&E) -> RetryVerdict,
    mut attempt: F,
) -> Result<T, E>
where
    F: FnMut() -> Result<T, E>,
{
    record_first_attempt(config);
    let started = start(config);
    let first = attempt();
    let Err(mut error) = first else {
        return first;
    };
    let mut attempts = Attempts::new(config, started);
    while let Some(delay) = attempts.next_wait(&judge(&error)) {
        attempts.sleep_blocking(delay);
        match attempt() {
            Ok(value) => return Ok(value),
            Err(next) => error = next,
        }
    }
    Err(error)
}

/// The async [`retry`]: runs the future `attempt` makes until one
/// succeeds, waiting with `sleeper` between attempts, on any executor.
///
/// # Errors
///
/// As [`retry`].
///
/// ```
/// use std::time::Duration;
/// use circuit_runtime::retry::{retry_async, RetryConfig};
/// use circuit_runtime::ManualClock;
///
/// # futures::executor::block_on(async {
/// let clock = ManualClock::new();
/// let config = RetryConfig::builder().jitter(false).clock(clock.clone()).build()?;
/// let sleeper = |delay| {
///     clock.advance(delay); // a real service passes `tokio::time::sleep`
///     std::future::ready(())
/// };
/// let mut attempts = 0;
/// let answer = retry_async(&config, sleeper, || {
///     attempts += 1;
///     let attempt = attempts;
///     async move {
///         if attempt < 2 {
///             Err(std::io::Error::from(std::io::ErrorKind::TimedOut))
///         } else {
///             Ok("pong")
///         }
///     }
/// })
/// .await;
/// assert_eq!(answer.unwrap(), "pong");
/// # Ok::<(), circuit_runtime::ConfigError>(())
/// # }).unwrap();
/// ```
pub async fn retry_async<T, E, F, Fut, S, L>(
    config: &RetryConfig<L>,
    sleeper: S,
    attempt: F,
) -> Result<T, E>
where
    E: Classify,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    S: Sleeper,
    L: LimitAttempt<E>,
{
    retry_async_judged(config, sleeper, classified, attempt).await
}

/// [`retry_async`] for errors that do not implement [`Classify`]:
/// `should_retry` decides.
///
/// # Errors
///
/// As [`retry`].
pub async fn retry_async_if<T, E, F, Fut, S, L>(
    config: &RetryConfig<L>,
    sleeper: S,
    should_retry: impl Fn(&E) -> bool,
    attempt: F,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    S: Sleeper,
    L: LimitAttempt<E>,
{
    let judge = |error: &E| RetryVerdict {
        retry: should_retry(error),
        hint: None,
        category: None,
    };
    retry_async_judged(config, sleeper, judge, attempt).await
}

pub(crate) async fn retry_async_judged<T, E, F, Fut, S, L>(
    config: &RetryConfig<L>,
    sleeper: S,
    judge: impl Fn(&E) -> RetryVerdict,
    mut attempt: F,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    S: Sleeper,
    L: LimitAttempt<E>,
{
    let limit = &config.attempt_timeout;
    record_first_attempt(config);
    let started = start(config);
    let first = limit.limit_attempt(&sleeper, attempt()).await;
    let Err(mut error) = first else {
        return first;
    };
    let mut attempts = Attempts::new(config, started);
    while let Some(delay) = attempts.next_wait(&judge(&error)) {
        sleeper.sleep(delay).await;
        match limit.limit_attempt(&sleeper, attempt()).await {
            Ok(value) => return Ok(value),
            Err(next) => error = next,
        }
    }
    Err(error)
}

pin_project_lite::pin_project! {
    /// `attempt`, unless it is still running `limit` after it first had to
    /// wait (see [`Deadline`]).
    pub(crate) struct Limited<'s, S: Sleeper, F> {
        sleeper: &'s S,
        limit: Duration,
        #[pin]
        attempt: F,
        #[pin]
        deadline: Deadline<S>,
    }
}

/// `attempt`, cut off at `limit` on a timer of `sleeper`'s, started when
/// it first has to wait: `None` when cut off.
pub(crate) fn limited<S: Sleeper, F: Future>(
    sleeper: &S,
    limit: Duration,
    attempt: F,
) -> Limited<'_, S, F> {
    Limited {
        sleeper,
        limit,
        attempt,
        deadline: Deadline::new(),
    }
}

impl<S: Sleeper, F: Future> Future for Limited<'_, S, F> {
    type Output = Option<F::Output>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<F::Output>> {
        let this = self.project();
        if let std::task::Poll::Ready(output) = this.attempt.poll(cx) {
            return std::task::Poll::Ready(Some(output));
        }
        this.deadline
            .poll_started(this.sleeper, *this.limit, cx)
            .map(|()| None)
    }
}

/// A borrowed sleeper, for waits that share one: the blanket impl for
/// functions rules out an impl for every `&S`.
pub(crate) struct Borrowed<'a, S>(pub(crate) &'a S);

impl<S: Sleeper> Sleeper for Borrowed<'_, S> {
    type Sleep = S::Sleep;

    fn sleep(&self, delay: Duration) -> S::Sleep {
        self.0.sleep(delay)
    }
}
