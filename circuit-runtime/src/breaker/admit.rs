//! Admission: whether a call may run now, and as what (a closed call or a
//! half-open trial). The only place the open and half-open timeouts are
//! judged.

use std::time::Duration;

use super::permit::{Admission, Holds, Mode, Permit};
use super::words::{trial_fields, trial_value, StateWord};
use super::{CircuitBreaker, State};
use crate::error::CircuitOpenError;
use crate::events::{Event, TransitionCause};
use crate::metrics::Counter;
use crate::sync::Ordering;
use crate::tagged;

/// How many times one call looks at the state word before it gives up and
/// is rejected. Without other threads a call needs at most three looks (a
/// half-open period timing out, the open period after it elapsing at once,
/// the trial); each further look means another thread changed the state
/// meanwhile. With the one-move-each rule, this bounds the looks a call
/// takes and the transitions it makes, whatever the timeouts, hooks or
/// scheduling: a call never loops on transitions. (Not wait-free: a
/// transition takes the breaker's mutex, and a trial claim retries its
/// compare-and-swap while other claims win.)
const MAX_LOOKS: u32 = 4;

impl CircuitBreaker {
    /// Asks to make one call. On success, run the call and hand the permit
    /// its verdict; dropping the permit instead releases its trial slot and
    /// records nothing, as a cancelled call (see [`Permit`]).
    ///
    /// # Errors
    ///
    /// [`CircuitOpenError`] when the breaker is open, forced open,
    /// half-open with every trial slot taken, or running
    /// `max_concurrent_calls` calls already (see
    /// [`CircuitOpenError::is_concurrency_limit`]).
    ///
    /// ```
    /// use circuit_runtime::{CircuitBreaker, Config};
    ///
    /// let breaker = CircuitBreaker::new("broker", Config::default());
    /// let permit = breaker.try_acquire()?;
    /// match publish() {
    ///     Ok(()) => permit.record_success(),
    ///     Err(_) => permit.record_failure(),
    /// }
    /// # fn publish() -> Result<(), ()> { Ok(()) }
    /// # Ok::<(), circuit_runtime::CircuitOpenError>(())
    /// ```
    #[inline]
    pub fn try_acquire(&self) -> Result<Permit<'_>, CircuitOpenError> {
        let word = self.state.load(Ordering::Acquire);
        if self.admits_at_once(word) {
            Ok(self.admit_closed(word))
        } else {
            self.try_acquire_slow(word)
        }
    }

    /// Whether a call meeting state word `word` takes the closed fast
    /// path: the breaker is closed, and its calls need nothing but a
    /// count: no concurrency slot, no timing, no window. Any of those takes
    /// the slow path, which does them.
    #[inline]
    pub(super) fn admits_at_once(&self, word: StateWord) -> bool {
        word.is_plain_closed(self.tuning.closed_path_work())
    }

    /// Admits a call into the closed period `word` of a breaker whose
    /// calls need nothing but a count ([`admits_at_once`](Self::admits_at_once)).
    /// Apart from [`admit`](Self::admit) so the mode and the absent start
    /// time are constants the verdict's checks fold away.
    #[inline]
    pub(super) fn admit_closed(&self, word: StateWord) -> Permit<'_> {
        Permit::new(
            self,
            Admission {
                generation: word.generation(),
                mode: Mode::CLOSED_AT_ONCE,
                started_at: 0,
            },
        )
    }

    /// Admits a call into the closed period `word` of a breaker whose calls
    /// need a window to record in and nothing else, as
    /// [`admit_closed`](Self::admit_closed) does, but for the verdict's
    /// slow path, which records in the window. `None` when the breaker is
    /// not such a breaker or not closed.
    #[inline]
    pub(super) fn admit_windowed(&self, word: StateWord) -> Option<Permit<'_>> {
        word.is_windowed_closed(self.tuning.closed_path_work())
            .then(|| {
                Permit::new(
                    self,
                    Admission {
                        generation: word.generation(),
                        mode: Mode::new(State::Closed, Holds::NOTHING),
                        started_at: 0,
                    },
                )
            })
    }

    /// Admits a call into the period `word` (a trial if `trial`), with a
    /// concurrency slot if the breaker limits calls.
    ///
    /// # Errors
    ///
    /// The rejection when every slot is taken. A trial's slot is given
    /// back then, by dropping its permit unjudged: the trial never ran.
    #[inline]
    pub(super) fn admit(
        &self,
        word: StateWord,
        trial: bool,
    ) -> Result<Permit<'_>, CircuitOpenError> {
        let permit = Permit::new(
            self,
            Admission {
                generation: word.generation(),
                mode: Mode::new(
                    word.state(),
                    if trial { Holds::TRIAL } else { Holds::NOTHING },
                ),
                started_at: self.call_started_at(),
            },
        );
        let limit = self.tuning.concurrency_limit();
        if limit == 0 {
            return Ok(permit);
        }
        if self.take_slot(limit) {
            Ok(permit.holding_slot())
        } else {
            let state = permit.admitted_in();
            drop(permit);
            Err(self.reject_at_limit(state))
        }
    }

    /// Takes one of `limit` concurrency slots, if one is free. A slot is
    /// not tied to a state period: a reset or a trip leaves running calls
    /// running, and each gives its slot back when its permit ends. A limit
    /// lowered below the calls running admits nobody until enough of them
    /// end; none is cut short.
    fn take_slot(&self, limit: u64) -> bool {
        // Acquire, with the Release of `release_slot`: a call that takes a
        // freed slot sees what the call that freed it did, as a semaphore.
        self.running
            .fetch_update(Ordering::Acquire, Ordering::Relaxed, |running| {
                (running < limit).then_some(running + 1)
            })
            .is_ok()
    }

    /// Gives back the slot of a permit that took one: called exactly once
    /// per such permit, when it ends, so the count never goes below zero.
    #[cold]
    #[inline(never)]
    pub(super) fn release_slot(&self) {
        self.running.fetch_sub(1, Ordering::Release);
    }

    /// When a call a slow-call rule will time began, or 0 (no rule: no
    /// clock read).
    #[inline]
    fn call_started_at(&self) -> u64 {
        if self.tuning.times_calls() {
            self.read_start_time()
        } else {
            0
        }
    }

    /// Out of line, so the untimed closed path carries none of its code.
    #[cold]
    #[inline(never)]
    fn read_start_time(&self) -> u64 {
        self.timeline.now_nanos()
    }

    #[cold]
    pub(super) fn try_acquire_slow(
        &self,
        mut word: StateWord,
    ) -> Result<Permit<'_>, CircuitOpenError> {
        // This call's own transitions: at most one of each, so that a
        // timeout shorter than a transition (a slow hook, a preempted
        // thread, nanosecond timeouts) cannot make one call flip the
        // breaker between open and half-open without end.
        let mut recovered = false;
        let mut timed_out = false;
        for _ in 1..MAX_LOOKS {
            match word.state() {
                State::Closed | State::Disabled => return self.admit(word, false),
                State::ForcedOpen => return Err(self.reject(State::ForcedOpen, None)),
                State::Open => match self.nanos_left_open() {
                    Some(retry_after) => return Err(self.reject(State::Open, Some(retry_after))),
                    None if recovered || self.trials_held() => {
                        // Reopened and elapsed again since this call moved
                        // it to half-open: leave the next move to the next
                        // call. Or another replica holds the trial.
                        return Err(self.reject(State::Open, Some(0)));
                    }
                    None => {
                        recovered = true;
                        self.transition(
                            Some(word),
                            State::HalfOpen,
                            TransitionCause::RecoveryTimeoutElapsed,
                        );
                    }
                },
                State::HalfOpen => {
                    // A period this call opened is not judged by it: its
                    // clock started after this call read the time.
                    if !recovered && !timed_out && self.half_open_expired() {
                        timed_out = true;
                        self.transition(Some(word), State::Open, TransitionCause::HalfOpenTimeout);
                    } else if let Some(permit) = self.claim_trial(word)? {
                        return Ok(permit);
                    }
                }
            }
            word = self.state.load(Ordering::Acquire);
        }
        // Lost every race so far: answer from the state as it is now.
        match word.state() {
            State::Closed | State::Disabled => self.admit(word, false),
            State::Open => {
                let retry_after = self.nanos_left_open().unwrap_or_default();
                Err(self.reject(State::Open, Some(retry_after)))
            }
            state => Err(self.reject(state, None)),
        }
    }

    /// Whether the current half-open period has run for `half_open_timeout`
    /// without a verdict.
    fn half_open_expired(&self) -> bool {
        let now = self.timeline.now_nanos();
        let entered_at = self.entered_at.load(Ordering::Acquire);
        Duration::from_nanos(now.saturating_sub(entered_at)) >= self.tuning.half_open_timeout()
    }

    /// Takes a trial slot of the half-open period `word`. `Ok(None)` means
    /// the period ended meanwhile and the caller should look again.
    ///
    /// No permit exists until the slot is confirmed: a permit is only ever
    /// made for a call that will run, so one that loses the race cannot
    /// record anything when it goes away.
    fn claim_trial(&self, word: StateWord) -> Result<Option<Permit<'_>>, CircuitOpenError> {
        let tag = word.tag();
        let max_in_flight = self.tuning.half_open_max_calls();
        let claimed = tagged::update(&self.trials, tag, |value| {
            let (successes, in_flight) = trial_fields(value);
            (in_flight < max_in_flight).then(|| trial_value(successes, in_flight + 1))
        });
        if let Err(found) = claimed {
            return if tagged::unpack(found).0 == tag {
                Err(self.reject(State::HalfOpen, None))
            } else {
                Ok(None) // the period ended meanwhile
            };
        }
        if self.state.load(Ordering::Acquire) == word {
            self.admit(word, true).map(Some)
        } else {
            // The period ended between reading the state and claiming the
            // slot: a call admitted now would run while the breaker is open.
            // The slot needs no giving back: the transition that ended the
            // period rewrote the trial word for the next one.
            Ok(None)
        }
    }

    /// How long an open breaker stays open, in nanoseconds, or `None` once
    /// its recovery timeout has elapsed.
    #[inline]
    pub(super) fn nanos_left_open(&self) -> Option<u64> {
        // The end first, then the time: read the other way round, an open
        // period that began in between would be measured from before it
        // began, and `retry_after` could exceed the open time.
        let until = self.open_until.load(Ordering::Acquire);
        let now = self.timeline.now_nanos();
        (now < until).then(|| until - now)
    }

    /// Counts a rejection and describes it; `retry_after` in nanoseconds,
    /// turned into a `Duration` only if the caller asks.
    #[inline]
    pub(super) fn reject(&self, state: State, retry_after: Option<u64>) -> CircuitOpenError {
        self.counters.add(Counter::Rejected);
        if self.is_observed() {
            self.announce_rejection(state, retry_after);
        }
        CircuitOpenError::new(self.name, state, retry_after)
    }

    /// Counts a call turned away at `max_concurrent_calls` by a breaker in
    /// `state`, apart from the open rejections, and describes it.
    #[cold]
    #[inline(never)]
    fn reject_at_limit(&self, state: State) -> CircuitOpenError {
        self.counters.add(Counter::BulkheadRejected);
        let rejection = CircuitOpenError::at_limit(self.name, state);
        if self.is_observed() {
            self.emit(&Event::Rejection(rejection.clone()));
        }
        rejection
    }

    /// Out of line, from plain values: an event built in the rejection's
    /// own path, or a rejection whose address an event takes, puts the
    /// returned rejection through memory on every rejected call.
    #[cold]
    #[inline(never)]
    fn announce_rejection(&self, state: State, retry_after: Option<u64>) {
        self.emit(&Event::Rejection(CircuitOpenError::new(
            self.name,
            state,
            retry_after,
        )));
    }
}
