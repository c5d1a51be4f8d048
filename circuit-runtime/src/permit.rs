//! The two-step protocol: ask for a permit, run the call yourself, then give
//! the permit its verdict.

use std::fmt;
use std::mem::ManuallyDrop;

use crate::breaker::CircuitBreaker;
use crate::State;

/// Permission to make one call, from [`CircuitBreaker::try_acquire`].
///
/// Give it exactly one verdict: [`record_success`](Permit::record_success),
/// [`record_failure`](Permit::record_failure) or
/// [`record_ignored`](Permit::record_ignored). A permit dropped without one
/// records a failure if the thread is panicking (the call blew up), and
/// otherwise records nothing and gives back its half-open trial slot (the
/// call was cancelled, e.g. its future dropped).
///
/// ```
/// use circuit_runtime::{CircuitBreaker, Config, State};
///
/// let breaker = CircuitBreaker::new("search", Config::builder().failure_threshold(1).build()?);
/// let permit = breaker.try_acquire()?;
/// permit.record_failure();
/// assert_eq!(breaker.state(), State::Open);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "a permit records nothing until it is given a verdict; dropping it releases its slot"]
pub struct Permit<'a> {
    breaker: &'a CircuitBreaker,
    admission: Admission,
}

/// What a permit remembers about how it was admitted.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Admission {
    /// The generation of the state period the call began in.
    pub(crate) generation: u64,
    /// The state the call was admitted in.
    pub(crate) state: State,
    /// Whether the call holds a half-open trial slot.
    pub(crate) trial: bool,
    /// When the call began, in timeline nanoseconds, or 0 when no rule
    /// needs call durations (so the hot path reads no clock).
    pub(crate) started_at: u64,
}

/// How a permit ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Success,
    Failure,
    Ignored,
    /// Dropped without a verdict and without a panic: a cancellation.
    Released,
}

impl<'a> Permit<'a> {
    pub(crate) fn new(breaker: &'a CircuitBreaker, admission: Admission) -> Self {
        Self { breaker, admission }
    }

    /// The call succeeded.
    ///
    /// ```
    /// # let breaker = circuit_runtime::CircuitBreaker::new("search", Default::default());
    /// breaker.try_acquire()?.record_success();
    /// assert_eq!(breaker.metrics().successful_calls, 1);
    /// # Ok::<(), circuit_runtime::CircuitOpenError>(())
    /// ```
    #[inline]
    pub fn record_success(self) {
        self.settle(Verdict::Success);
    }

    /// The call failed.
    ///
    /// ```
    /// # let breaker = circuit_runtime::CircuitBreaker::new("search", Default::default());
    /// breaker.try_acquire()?.record_failure();
    /// assert_eq!(breaker.metrics().failed_calls, 1);
    /// # Ok::<(), circuit_runtime::CircuitOpenError>(())
    /// ```
    pub fn record_failure(self) {
        self.settle(Verdict::Failure);
    }

    /// The call ended in an error that says nothing about the dependency's
    /// health (a validation error, a "not found"): it counts as neither
    /// success nor failure.
    ///
    /// ```
    /// # let breaker = circuit_runtime::CircuitBreaker::new("search", Default::default());
    /// breaker.try_acquire()?.record_ignored();
    /// assert_eq!(breaker.metrics().ignored_calls, 1);
    /// # Ok::<(), circuit_runtime::CircuitOpenError>(())
    /// ```
    pub fn record_ignored(self) {
        self.settle(Verdict::Ignored);
    }

    /// The state the call was admitted in: `Closed`, `HalfOpen` (a trial)
    /// or `Disabled`.
    ///
    /// ```
    /// # let breaker = circuit_runtime::CircuitBreaker::new("search", Default::default());
    /// let permit = breaker.try_acquire()?;
    /// assert_eq!(permit.admitted_in(), circuit_runtime::State::Closed);
    /// # Ok::<(), circuit_runtime::CircuitOpenError>(())
    /// ```
    pub fn admitted_in(&self) -> State {
        self.admission.state
    }

    /// The verdict of a call that ended in `error` (`None` for a success),
    /// classified by `is_failure`: the one place outcomes are classified.
    #[inline]
    pub(crate) fn record_error<E>(self, error: Option<&E>, is_failure: impl Fn(&E) -> bool) {
        match error {
            None => self.record_success(),
            Some(err) if is_failure(err) => self.record_failure(),
            Some(_) => self.record_ignored(),
        }
    }

    #[inline]
    fn settle(self, verdict: Verdict) {
        // The verdict replaces the drop: skip `Drop`, which would settle again.
        let this = ManuallyDrop::new(self);
        this.breaker.settle(this.admission, verdict);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let verdict = if std::thread::panicking() {
            Verdict::Failure
        } else {
            Verdict::Released
        };
        self.breaker.settle(self.admission, verdict);
    }
}

impl fmt::Debug for Permit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("breaker", &self.breaker.name())
            .field("admitted_in", &self.admission.state)
            .finish_non_exhaustive()
    }
}
