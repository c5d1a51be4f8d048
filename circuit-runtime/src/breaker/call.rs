//! The one-step calls: acquire, run the caller's closure or future, record
//! its outcome.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use super::permit::{InFlight, Permit, Verdict};
use super::words::StateWord;
use super::{CircuitBreaker, State};
use crate::error::{CallError, CircuitOpenError, TimeoutError};
use crate::sleep::{Deadline, Sleeper};
use crate::sync::Ordering;

impl CircuitBreaker {
    /// Runs `f` through the breaker; every `Err` counts as a failure.
    ///
    /// A panic inside `f` (or inside the classifier of
    /// [`call_with`](Self::call_with)) counts as a failure and keeps
    /// unwinding.
    ///
    /// # Errors
    ///
    /// [`CallError::Rejected`] without running `f` when the breaker rejects
    /// the call, [`CallError::Failed`] with `f`'s error when it ran and failed.
    ///
    /// ```
    /// use circuit_runtime::{CircuitBreaker, Config};
    /// let breaker = CircuitBreaker::new("pricing", Config::default());
    /// let price = breaker.call(|| Ok::<_, std::io::Error>(42))?;
    /// assert_eq!(price, 42);
    /// # Ok::<(), circuit_runtime::CallError<std::io::Error>>(())
    /// ```
    #[inline]
    pub fn call<T, E>(&self, f: impl FnOnce() -> Result<T, E>) -> Result<T, CallError<E>> {
        self.call_with(|_| true, f)
    }

    /// Like [`call`](Self::call), but only errors for which `is_failure`
    /// returns `true` count as failures; the others are ignored (neither
    /// failure nor success), e.g. a "not found" that says nothing about the
    /// dependency's health.
    ///
    /// # Errors
    ///
    /// As [`call`](Self::call).
    ///
    /// ```
    /// use circuit_runtime::{CircuitBreaker, Config};
    /// let breaker = CircuitBreaker::new("users", Config::builder().failure_threshold(1).build()?);
    /// let not_found = |status: &u16| *status >= 500;
    /// let _ = breaker.call_with(not_found, || Err::<(), u16>(404));
    /// assert_eq!(breaker.metrics().ignored_calls, 1);
    /// assert_eq!(breaker.state(), circuit_runtime::State::Closed);
    /// # Ok::<(), circuit_runtime::ConfigError>(())
    /// ```
    #[inline]
    pub fn call_with<T, E>(
        &self,
        is_failure: impl Fn(&E) -> bool,
        f: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, CallError<E>> {
        // Not `try_acquire()?`: merged with the slow path's result, which
        // comes back through memory, the permit was copied through the stack
        // in pieces whose reloads stall store forwarding, which tripled the
        // closed path's overhead. Apart, the permit stays in registers.
        let word = self.state.load(Ordering::Acquire);
        if self.admits_at_once(word) {
            return Self::run(self.admit_closed(word), is_failure, f, Verdict::Success);
        }
        if let Some(permit) = self.admit_windowed(word) {
            return Self::run(permit, is_failure, f, Verdict::Success);
        }
        // The common rejection, built straight into the caller's return
        // slot: returned from another function, its copy stalled.
        if word.state() == State::Open {
            if let Some(retry_after) = self.nanos_left_open() {
                return Err(CallError::Rejected(
                    self.reject(State::Open, Some(retry_after)),
                ));
            }
        }
        self.call_with_slow(word, is_failure, f, Verdict::Success)
    }

    /// [`call_with`](Self::call_with) with only the closed path inline, for
    /// the attribute's generated code: inlined into a protected function,
    /// the open rejection's clock read cost its closed path about 3 ns
    /// (`attribute` bench), while a direct `call_with` keeps it inline,
    /// where it saves a rejection 5 to 8 ns (`open_reject` bench).
    #[allow(clippy::inline_always)] // see `call_or_reject`
    #[inline(always)]
    pub(crate) fn call_with_closed_inline<T, E>(
        &self,
        is_failure: impl Fn(&E) -> bool,
        f: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, CallError<E>> {
        self.call_closed_inline_as(is_failure, f, Verdict::Success)
    }

    /// [`call_with_closed_inline`](Self::call_with_closed_inline) whose
    /// success is recorded as `success`: `Verdict::FirstRetrySuccess` for
    /// the first attempt of a `#[retry]` call, counted in place of the
    /// plain success so the retry costs no counter of its own.
    #[allow(clippy::inline_always)] // see `call_or_reject`
    #[inline(always)]
    pub(crate) fn call_closed_inline_as<T, E>(
        &self,
        is_failure: impl Fn(&E) -> bool,
        f: impl FnOnce() -> Result<T, E>,
        success: Verdict,
    ) -> Result<T, CallError<E>> {
        let word = self.state.load(Ordering::Acquire);
        if self.admits_at_once(word) {
            return Self::run(self.admit_closed(word), is_failure, f, success);
        }
        self.call_with_slow(word, is_failure, f, success)
    }

    #[cold]
    #[inline(never)]
    fn call_with_slow<T, E>(
        &self,
        word: StateWord,
        is_failure: impl Fn(&E) -> bool,
        f: impl FnOnce() -> Result<T, E>,
        success: Verdict,
    ) -> Result<T, CallError<E>> {
        // The windowed closed call and the open rejection once more, for
        // `call_with_closed_inline`, the rejection built straight into the
        // caller's return slot.
        if let Some(permit) = self.admit_windowed(word) {
            return Self::run(permit, is_failure, f, success);
        }
        if word.state() == State::Open {
            if let Some(retry_after) = self.nanos_left_open() {
                return Err(CallError::Rejected(
                    self.reject(State::Open, Some(retry_after)),
                ));
            }
        }
        let permit = self.try_acquire_slow(word).map_err(CallError::Rejected)?;
        Self::run(permit, is_failure, f, success)
    }

    #[inline]
    fn run<T, E>(
        permit: Permit<'_>,
        is_failure: impl Fn(&E) -> bool,
        f: impl FnOnce() -> Result<T, E>,
        success: Verdict,
    ) -> Result<T, CallError<E>> {
        permit
            .run(f, |result| result.as_ref().err(), is_failure, success)
            .map_err(CallError::Failed)
    }

    /// Runs the future `fut` through the breaker; every `Err` counts as a
    /// failure. Works on any executor: the breaker never spawns or sleeps.
    ///
    /// A panic while polling `fut` counts as a failure and keeps unwinding,
    /// whether the panic escapes or the executor catches it. Dropping the
    /// returned future before it finishes cancels the call: it gives back
    /// its trial slot and counts as nothing, even when the drop is part of
    /// another panic's unwinding (a sibling in `join!`, a bug elsewhere in
    /// the task), which says nothing about this dependency.
    ///
    /// # Errors
    ///
    /// As [`call`](Self::call).
    ///
    /// ```
    /// use circuit_runtime::{CircuitBreaker, Config};
    /// # futures::executor::block_on(async {
    /// let breaker = CircuitBreaker::new("quotes", Config::default());
    /// let quote = breaker.call_async(async { Ok::<_, std::io::Error>(7) }).await?;
    /// assert_eq!(quote, 7);
    /// # Ok::<(), circuit_runtime::CallError<std::io::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn call_async<T, E, F>(&self, fut: F) -> CallFuture<'_, F, fn(&E) -> bool>
    where
        F: Future<Output = Result<T, E>>,
    {
        self.call_async_with(|_: &E| true, fut)
    }

    /// The async twin of [`call_with`](Self::call_with).
    ///
    /// # Errors
    ///
    /// As [`call`](Self::call).
    ///
    /// ```
    /// use circuit_runtime::{CircuitBreaker, Config};
    /// # futures::executor::block_on(async {
    /// let breaker = CircuitBreaker::new("users", Config::default());
    /// let result = breaker
    ///     .call_async_with(|status: &u16| *status >= 500, async { Err::<(), u16>(404) })
    ///     .await;
    /// assert!(result.is_err());
    /// assert_eq!(breaker.metrics().ignored_calls, 1);
    /// # });
    /// ```
    pub fn call_async_with<T, E, F, C>(&self, is_failure: C, fut: F) -> CallFuture<'_, F, C>
    where
        F: Future<Output = Result<T, E>>,
        C: Fn(&E) -> bool,
    {
        CallFuture {
            call: InFlight::new(self, fut, is_failure),
        }
    }
}

impl CircuitBreaker {
    /// [`call_async`](Self::call_async) with a time limit: a call still
    /// running `limit` after the breaker admitted it is cut off, counted
    /// as a failure and as a slow call, and fails with
    /// `E::from(`[`TimeoutError`]`)`. `sleeper` measures the limit, as it
    /// waits between retries (see [`Sleeper`]): the breaker never spawns
    /// or sleeps by itself, so any executor works.
    ///
    /// # Errors
    ///
    /// As [`call`](Self::call), and [`CallError::Failed`] with the
    /// timeout.
    ///
    /// ```
    /// use std::time::Duration;
    /// use circuit_runtime::{CircuitBreaker, Config, TimeoutError};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let breaker = CircuitBreaker::new("search", Config::default());
    /// let slow = async {
    ///     tokio::time::sleep(Duration::from_secs(10)).await;
    ///     Ok::<_, TimeoutError>("results")
    /// };
    /// let result = breaker.call_async_timeout(Duration::from_secs(1), tokio::time::sleep, slow).await;
    /// assert!(result.is_err());
    /// assert_eq!(breaker.metrics().slow_calls, 1);
    /// # }
    /// ```
    pub fn call_async_timeout<T, E, F, S>(
        &self,
        limit: Duration,
        sleeper: S,
        fut: F,
    ) -> TimedCallFuture<'_, F, fn(&E) -> bool, S>
    where
        F: Future<Output = Result<T, E>>,
        E: From<TimeoutError>,
        S: Sleeper,
    {
        TimedCallFuture {
            call: TimedInFlight::new(InFlight::new(self, fut, |_: &E| true), self, sleeper, limit),
        }
    }
}

pin_project_lite::pin_project! {
    /// A call in flight with a time limit: the limit starts when the call
    /// is admitted, and at the limit the call is ended as timed out. The
    /// one timed step of every timed call, as [`InFlight`] is of every
    /// async call.
    pub(crate) struct TimedInFlight<'a, F, C, S: Sleeper> {
        #[pin]
        call: InFlight<'a, F, C>,
        // Started once the admitted call first has to wait.
        #[pin]
        deadline: Deadline<S>,
        sleeper: S,
        limit: Duration,
        breaker: &'a CircuitBreaker,
    }
}

impl<'a, F: Future, C, S: Sleeper> TimedInFlight<'a, F, C, S> {
    pub(crate) fn new(
        call: InFlight<'a, F, C>,
        breaker: &'a CircuitBreaker,
        sleeper: S,
        limit: Duration,
    ) -> Self {
        TimedInFlight {
            call,
            deadline: Deadline::new(),
            sleeper,
            limit,
            breaker,
        }
    }

    /// Polls the call, then its limit: the call's output, a timeout, or
    /// the breaker's rejection.
    pub(crate) fn poll_timed<E>(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        error: impl FnOnce(&F::Output) -> Option<&E>,
    ) -> Poll<Result<Result<F::Output, TimeoutError>, CircuitOpenError>>
    where
        C: Fn(&E) -> bool,
    {
        let mut this = self.project();
        if let Poll::Ready(outcome) = this.call.as_mut().poll_call(cx, error) {
            return Poll::Ready(outcome.map(Ok));
        }
        // A call waiting for nothing but its admission has no limit yet.
        if !this.call.is_running() && !this.deadline.is_started() {
            return Poll::Pending;
        }
        if this
            .deadline
            .poll_started(this.sleeper, *this.limit, cx)
            .is_pending()
        {
            return Poll::Pending;
        }
        this.call.time_out();
        let timeout = TimeoutError::new(this.breaker.static_name(), *this.limit);
        Poll::Ready(Ok(Err(timeout)))
    }
}

pin_project_lite::pin_project! {
    /// The future of [`CircuitBreaker::call_async_timeout`]: a call that
    /// races its time limit once admitted.
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct TimedCallFuture<'a, F, C, S: Sleeper> {
        #[pin]
        call: TimedInFlight<'a, F, C, S>,
    }
}

impl<T, E, F, C, S> Future for TimedCallFuture<'_, F, C, S>
where
    F: Future<Output = Result<T, E>>,
    C: Fn(&E) -> bool,
    E: From<TimeoutError>,
    S: Sleeper,
{
    type Output = Result<T, CallError<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project()
            .call
            .poll_timed(cx, |result| result.as_ref().err())
            .map(|outcome| match outcome {
                Ok(Ok(result)) => result.map_err(CallError::Failed),
                Ok(Err(timeout)) => Err(CallError::Failed(E::from(timeout))),
                Err(rejection) => Err(CallError::Rejected(rejection)),
            })
    }
}

impl<F, C, S: Sleeper> fmt::Debug for TimedCallFuture<'_, F, C, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimedCallFuture")
            .field("breaker", &self.call.breaker.name())
            .field("limit", &self.call.limit)
            .finish_non_exhaustive()
    }
}

pin_project_lite::pin_project! {
    /// The future of [`CircuitBreaker::call_async`] and
    /// [`call_async_with`](CircuitBreaker::call_async_with): asks the
    /// breaker on its first poll, then runs the call.
    ///
    /// ```
    /// use circuit_runtime::{CallFuture, CircuitBreaker, Config};
    ///
    /// let breaker = CircuitBreaker::new("quotes", Config::default());
    /// let call: CallFuture<'_, _, _> = breaker.call_async(async { Ok::<_, ()>(7) });
    /// assert_eq!(futures::executor::block_on(call), Ok(7));
    /// ```
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct CallFuture<'a, F, C> {
        #[pin]
        call: InFlight<'a, F, C>,
    }
}

impl<T, E, F, C> Future for CallFuture<'_, F, C>
where
    F: Future<Output = Result<T, E>>,
    C: Fn(&E) -> bool,
{
    type Output = Result<T, CallError<E>>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project()
            .call
            .poll_call(cx, |result| result.as_ref().err())
            .map(|outcome| match outcome {
                Ok(result) => result.map_err(CallError::Failed),
                Err(rejection) => Err(CallError::Rejected(rejection)),
            })
    }
}

impl<F, C> fmt::Debug for CallFuture<'_, F, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallFuture")
            .field("admitted", &self.call.has_asked())
            .finish_non_exhaustive()
    }
}
