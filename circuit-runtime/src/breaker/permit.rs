//! The two-step protocol: ask for a permit, run the call yourself, then give
//! the permit its verdict.

use std::fmt;
use std::future::Future;
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::{CircuitBreaker, State};
use crate::error::CircuitOpenError;
use crate::sync::Ordering;

/// Permission to make one call, from [`CircuitBreaker::try_acquire`].
///
/// Give it exactly one verdict: [`record_success`](Permit::record_success),
/// [`record_failure`](Permit::record_failure) or
/// [`record_ignored`](Permit::record_ignored). A permit dropped without one
/// is a cancelled call: it records nothing and gives back its half-open
/// trial slot. That holds even when it is dropped by a panic: the breaker
/// cannot tell whether the panic came from the call or from code around
/// it (a sibling future, a bug elsewhere in the task), and counting someone
/// else's panic would trip a healthy dependency. To count a panic in the
/// call itself as a failure, run it through [`call`](CircuitBreaker::call),
/// [`call_async`](CircuitBreaker::call_async) or `#[circuit_breaker]`,
/// which see the call's own body unwind.
///
/// Under [`max_concurrent_calls`](crate::ConfigBuilder::max_concurrent_calls)
/// the permit holds one of the breaker's concurrency slots, and gives it
/// back exactly once when it ends, by a verdict or by being dropped.
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
    /// What dropping the permit without a verdict means: `Released` (a
    /// cancellation), except while the call's own body runs under
    /// [`run`](Permit::run) or [`poll_body`](Permit::poll_body), when the
    /// only way to drop it is that body unwinding: `Failure`.
    dropped_as: Verdict,
}

/// What a permit remembers about how it was admitted.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Admission {
    /// The generation of the state period the call began in.
    pub(crate) generation: u64,
    /// The state the call was admitted in, and the slots it holds.
    pub(crate) mode: Mode,
    /// When the call began, in timeline nanoseconds, or 0 when no rule
    /// needs call durations (so the hot path reads no clock).
    pub(crate) started_at: u64,
}

/// The state a call was admitted in and the slots it holds, in one word:
/// the state's code in the low byte, the [`Holds`] in the next, and a bit
/// above them that only the closed fast path leaves clear. One word,
/// written by one store, rather than a byte each: a permit kept in a
/// future is read back whole, and a wide load of narrow stores misses the
/// store buffer (`async_closed` measured 8.5 ns with two bytes, against
/// 7.4 ns before the second byte existed). A call admitted on the closed
/// fast path is 0, so its verdict tests one word against zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Mode(u64);

impl Mode {
    /// Admitted on the closed fast path: closed, holding nothing, timing
    /// nothing, and with no window to record in when admitted, so a
    /// success only counts. Every other admission has [`Self::WEIGHED`].
    pub(crate) const CLOSED_AT_ONCE: Mode = Mode(0);

    /// Set in every mode but [`Self::CLOSED_AT_ONCE`]: the verdict takes
    /// the slow path, which weighs the call against the breaker's rules.
    const WEIGHED: u64 = 1 << 16;

    pub(crate) fn new(state: State, holds: Holds) -> Mode {
        Mode(Self::WEIGHED | state.code() | u64::from(holds.0) << 8)
    }

    /// The state the call was admitted in.
    pub(crate) fn state(self) -> State {
        State::from_code(self.0 & 0xff)
    }

    /// The slots the call holds.
    #[allow(clippy::cast_possible_truncation)] // the byte `new` put there
    pub(crate) fn holds(self) -> Holds {
        Holds((self.0 >> 8) as u8)
    }
}

/// The slots a call holds: a half-open trial slot, a concurrency slot
/// (`max_concurrent_calls`), both or neither.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Holds(u8);

impl Holds {
    pub(crate) const NOTHING: Holds = Holds(0);
    pub(crate) const TRIAL: Holds = Holds(1);
    const SLOT: u8 = 2;

    /// Whether a half-open trial slot is held.
    pub(crate) fn trial(self) -> bool {
        self.0 & Self::TRIAL.0 != 0
    }

    /// Whether a concurrency slot is held.
    pub(crate) fn slot(self) -> bool {
        self.0 & Self::SLOT != 0
    }

    /// These, and a concurrency slot.
    fn and_slot(self) -> Holds {
        Holds(self.0 | Self::SLOT)
    }
}

/// How a permit ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Success,
    Failure,
    Ignored,
    /// Dropped without a verdict, outside the call's own body: a
    /// cancellation.
    Released,
    /// Cut off at its time limit: a failure, and a slow call.
    TimedOut,
    /// A success at the first attempt of a `#[retry]` call: a success,
    /// counted as the retry's instead of the plain one.
    FirstRetrySuccess,
}

impl<'a> Permit<'a> {
    pub(crate) fn new(breaker: &'a CircuitBreaker, admission: Admission) -> Self {
        Self {
            breaker,
            admission,
            dropped_as: Verdict::Released,
        }
    }

    /// The permit, now holding a concurrency slot it gives back when it
    /// ends.
    pub(super) fn holding_slot(mut self) -> Self {
        let mode = self.admission.mode;
        self.admission.mode = Mode::new(mode.state(), mode.holds().and_slot());
        self
    }

    /// The call succeeded.
    ///
    /// ```
    /// # let breaker = circuit_runtime::CircuitBreaker::new("search", Default::default());
    /// breaker.try_acquire()?.record_success();
    /// assert_eq!(breaker.metrics().successful_calls, 1);
    /// # Ok::<(), circuit_runtime::CircuitOpenError>(())
    /// ```
    #[allow(clippy::inline_always)] // measured: see `run`
    #[inline(always)]
    pub fn record_success(self) {
        self.give_verdict(Verdict::Success);
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
        self.give_verdict(Verdict::Failure);
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
        self.give_verdict(Verdict::Ignored);
    }

    /// The breaker that admitted the call.
    pub(crate) fn breaker(&self) -> &'a CircuitBreaker {
        self.breaker
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
        self.admission.mode.state()
    }

    /// The verdict of a call that ended in `error` (`None` for a success),
    /// classified by `is_failure`: the one place outcomes are classified.
    /// A panicking `is_failure` drops the permit as the call's body would
    /// have left it: after [`run`](Permit::run), a failure (the call did
    /// return an error, and every error counts unless classified otherwise).
    #[allow(clippy::inline_always)] // measured: see `run`
    #[inline(always)]
    pub(crate) fn record_error<E>(
        self,
        error: Option<&E>,
        is_failure: impl Fn(&E) -> bool,
        success: Verdict,
    ) {
        match error {
            None => self.give_verdict(success),
            Some(err) if is_failure(err) => self.record_failure(),
            Some(_) => self.record_ignored(),
        }
    }

    /// Runs the call's own body and records its outcome: the one
    /// run-and-record step of every sync call. A panic inside `body` (or
    /// inside `is_failure`) unwinds through this frame and drops the permit
    /// as a failure; no other panic can, since the permit lives only here.
    ///
    /// `inline(always)`, as the verdict steps below it: through the
    /// attribute's `call_or_reject` the inliner gave up one level short,
    /// and the closed path paid 7.7 ns more than a direct `call` (the
    /// `attribute` bench, 21.3 ns against 13.6 before the permit learned to
    /// tell its own panics apart; 13.9 ns with this).
    #[allow(clippy::inline_always)] // measured, above
    #[inline(always)]
    pub(crate) fn run<R, E>(
        mut self,
        body: impl FnOnce() -> R,
        error: impl FnOnce(&R) -> Option<&E>,
        is_failure: impl Fn(&E) -> bool,
        success: Verdict,
    ) -> R {
        self.dropped_as = Verdict::Failure;
        let outcome = body();
        self.finish(error(&outcome), is_failure, success);
        outcome
    }

    /// Polls the call's own future once. A panic inside that poll leaves the
    /// permit marked as failed, so it records a failure whenever it is then
    /// dropped: while unwinding, or later by an executor that caught the
    /// panic. Between polls the permit is unmarked, so a future dropped
    /// there, even by someone else's unwinding, is a cancellation.
    #[inline]
    pub(crate) fn poll_body<F: Future>(
        &mut self,
        body: Pin<&mut F>,
        cx: &mut Context<'_>,
    ) -> Poll<F::Output> {
        self.dropped_as = Verdict::Failure;
        let poll = body.poll(cx);
        self.dropped_as = Verdict::Released;
        poll
    }

    /// Records the verdict of a call that ended in `error` (`None` for a
    /// success), as a call's own body would: a panicking `is_failure` drops
    /// the permit as a failure (the call did return an error, and every
    /// error counts unless classified otherwise).
    #[allow(clippy::inline_always)] // measured: see `run`
    #[inline(always)]
    pub(crate) fn finish<E>(
        mut self,
        error: Option<&E>,
        is_failure: impl Fn(&E) -> bool,
        success: Verdict,
    ) {
        self.dropped_as = Verdict::Failure;
        self.record_error(error, is_failure, success);
    }

    /// Records the verdict `judge` returns, as a call's own body would: a
    /// panicking `judge` drops the permit as a failure.
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    pub(crate) fn judge(mut self, judge: impl FnOnce() -> Verdict) {
        self.dropped_as = Verdict::Failure;
        let verdict = judge();
        self.give_verdict(verdict);
    }

    #[allow(clippy::inline_always)] // measured: see `run`
    #[inline(always)]
    pub(crate) fn give_verdict(self, verdict: Verdict) {
        // The verdict replaces the drop: skip `Drop`, which would record again.
        let this = ManuallyDrop::new(self);
        this.breaker.record_outcome(this.admission, verdict);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.breaker.record_outcome(self.admission, self.dropped_as);
    }
}

impl fmt::Debug for Permit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("breaker", &self.breaker.name())
            .field("admitted_in", &self.admission.mode.state())
            .finish_non_exhaustive()
    }
}

pin_project_lite::pin_project! {
    /// A call in flight: asks its breaker on its first poll, then polls its
    /// own future under the permit, and gives the permit its verdict when
    /// the future completes. The one ask-run-and-record step of every async
    /// call, written out as a future rather than an `async fn`: each
    /// `async` layer stored its own copy of the state and its own resume
    /// point, and three of them cost the closed path more than the
    /// breaker's work (`async_closed` bench).
    pub(crate) struct InFlight<'a, F, C> {
        #[pin]
        body: F,
        // `Some` until the first poll asks it for a permit.
        breaker: Option<&'a CircuitBreaker>,
        // `None` before the call is admitted and after it completes.
        permit: Option<Permit<'a>>,
        is_failure: C,
    }
}

impl<F, C> InFlight<'_, F, C> {
    /// Whether the call has asked its breaker (and was admitted or
    /// rejected).
    pub(crate) fn has_asked(&self) -> bool {
        self.breaker.is_none()
    }
}

impl<'a, F: Future, C> InFlight<'a, F, C> {
    /// A call that asks `breaker` on its first poll.
    pub(crate) fn new(breaker: &'a CircuitBreaker, body: F, is_failure: C) -> Self {
        Self {
            body,
            breaker: Some(breaker),
            permit: None,
            is_failure,
        }
    }

    /// A call already admitted under `permit`: it is never rejected.
    pub(crate) fn admitted(permit: Permit<'a>, body: F, is_failure: C) -> Self {
        Self {
            body,
            breaker: None,
            permit: Some(permit),
            is_failure,
        }
    }

    /// Whether the call was admitted and has not finished: the time a
    /// time limit measures.
    pub(crate) fn is_running(&self) -> bool {
        self.permit.is_some()
    }

    /// Ends a running call at its time limit: its permit records a failure
    /// and a slow call. The body is dropped with this future.
    pub(crate) fn time_out(self: Pin<&mut Self>) {
        if let Some(permit) = self.project().permit.take() {
            permit.give_verdict(Verdict::TimedOut);
        }
    }

    /// Asks the breaker on the first poll, then polls the call's future;
    /// when it completes, gives the permit the verdict for the error
    /// `error` finds in its output.
    ///
    /// The closed case builds the permit where it is kept: through
    /// `try_acquire`'s `Result` it was built on the stack and copied, and
    /// the copy's wide loads of its narrow stores stalled (`async_closed`
    /// bench).
    ///
    /// # Panics
    ///
    /// When polled again after completing or being rejected.
    #[inline]
    pub(crate) fn poll_call<E>(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        error: impl FnOnce(&F::Output) -> Option<&E>,
    ) -> Poll<Result<F::Output, CircuitOpenError>>
    where
        C: Fn(&E) -> bool,
    {
        let this = self.project();
        if let Some(breaker) = this.breaker.take() {
            let word = breaker.state.load(Ordering::Acquire);
            if breaker.admits_at_once(word) {
                *this.permit = Some(breaker.admit_closed(word));
            } else if let Some(permit) = breaker.admit_windowed(word) {
                *this.permit = Some(permit);
            } else {
                match breaker.try_acquire_slow(word) {
                    Ok(permit) => *this.permit = Some(permit),
                    Err(rejection) => return Poll::Ready(Err(rejection)),
                }
            }
        }
        let permit = this
            .permit
            .as_mut()
            .expect("a protected call's future polled after it completed");
        let Poll::Ready(outcome) = permit.poll_body(this.body, cx) else {
            return Poll::Pending;
        };
        if let Some(permit) = this.permit.take() {
            permit.finish(error(&outcome), &*this.is_failure, Verdict::Success);
        }
        Poll::Ready(Ok(outcome))
    }
}
