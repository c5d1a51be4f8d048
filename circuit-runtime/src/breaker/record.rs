//! Recording outcomes: what a call's verdict does to the counters, the
//! window and the state of the period it was admitted in.

use std::time::Duration;

use super::permit::{Admission, Holds, Mode, Verdict};
use super::tuning::RateRules;
use super::words::{tag_of, trial_fields, trial_value, StateWord, MAX_TRIAL_FIELD};
use super::{CircuitBreaker, State};
use crate::events::{Event, RetryAttempt, SlowCall, TransitionCause};
use crate::metrics::Counter;
use crate::sync::Ordering;
use crate::tagged;
use crate::window::{Outcome, Tally};

impl CircuitBreaker {
    /// Applies a permit's verdict. Called exactly once per permit. Takes the
    /// admission by value: a reference pins it to the stack, and copying it
    /// there costs a store-forwarding stall on every call.
    ///
    /// The common case, a success of a call admitted on the closed fast
    /// path (nothing timed, no window, no slot), is a counter bump and one
    /// load, inlined into the caller; the
    /// rest is out of line. Measured: the call and the six saved registers
    /// of an out-of-line `record_outcome` were a third of the closed path's
    /// overhead (`closed_success` bench).
    #[allow(clippy::inline_always)] // measured, above
    #[inline(always)]
    pub(super) fn record_outcome(&self, admission: Admission, verdict: Verdict) {
        // Folded away: every caller passes a constant verdict.
        let success_counter = if verdict == Verdict::FirstRetrySuccess {
            Counter::RetrySucceededFirst
        } else {
            Counter::Successful
        };
        if matches!(verdict, Verdict::Success | Verdict::FirstRetrySuccess)
            && admission.mode == Mode::CLOSED_AT_ONCE
        {
            self.counters.add(success_counter);
            self.end_closed_failure_run(&admission);
        } else {
            // Field by field: the 24-byte `Admission` would be passed
            // through memory, and its stores, hoisted above the branch by
            // the optimizer, stalled the caller's next loads of that stack.
            let Admission {
                generation,
                mode,
                started_at,
            } = admission;
            self.record_outcome_slow(generation, mode, started_at, verdict);
        }
    }

    #[inline(never)]
    fn record_outcome_slow(&self, generation: u64, mode: Mode, started_at: u64, verdict: Verdict) {
        // First: whatever the verdict does next (a transition, a hook), the
        // slot is back, so no path out of here can leak it.
        if mode.holds().slot() {
            self.release_slot();
        }
        let admission = &Admission {
            generation,
            mode,
            started_at,
        };
        let timed = admission.started_at != 0
            && matches!(
                verdict,
                Verdict::Success
                    | Verdict::FirstRetrySuccess
                    | Verdict::Failure
                    | Verdict::Ignored
                    | Verdict::TimedOut
            )
            && self.time_call(admission.started_at);
        // A call cut off at its time limit ran too long by definition.
        let slow = timed || verdict == Verdict::TimedOut;
        match verdict {
            Verdict::Success => self.counters.add(Counter::Successful),
            Verdict::FirstRetrySuccess => self.counters.add(Counter::RetrySucceededFirst),
            Verdict::Failure | Verdict::TimedOut => self.counters.add(Counter::Failed),
            Verdict::Ignored => self.counters.add(Counter::Ignored),
            Verdict::Released => {}
        }
        let verdict = match verdict {
            Verdict::TimedOut => Verdict::Failure,
            Verdict::FirstRetrySuccess => Verdict::Success,
            verdict => verdict,
        };
        if slow {
            self.counters.add(Counter::Slow);
        }
        match (admission.mode.state(), verdict) {
            (_, Verdict::Failure) => self.on_failure(admission, slow),
            (State::Closed, Verdict::Success) => self.on_closed_success(admission, slow),
            (State::HalfOpen, Verdict::Success) => self.on_trial_success(admission),
            (State::HalfOpen, Verdict::Ignored | Verdict::Released)
                if admission.mode.holds().trial() =>
            {
                self.release_trial(admission.generation);
            }
            _ => {}
        }
    }

    /// Measures a timed call that ran to a verdict, reports it, and
    /// returns whether it was slow.
    #[cold]
    fn time_call(&self, started_at: u64) -> bool {
        let elapsed = self.timeline.now_nanos().saturating_sub(started_at);
        crate::telemetry::record_duration(self, Duration::from_nanos(elapsed));
        let Some(threshold) = self.tuning.slow_call_nanos() else {
            return false;
        };
        let slow = elapsed >= threshold;
        if slow && self.is_observed() {
            self.emit(&Event::SlowCall(SlowCall {
                name: self.static_name(),
                duration: Duration::from_nanos(elapsed),
                threshold: Duration::from_nanos(threshold),
            }));
        }
        slow
    }

    /// Whether `generation` is the current period: the one check that tells
    /// a late outcome from a current one, on the full, never-repeating
    /// generation (counter tags only guard the instant after it).
    #[inline]
    fn is_current(&self, generation: u64) -> bool {
        self.state.load(Ordering::Acquire).generation() == generation
    }

    /// A closed-period success ends the run of consecutive failures.
    #[inline]
    fn end_closed_failure_run(&self, admission: &Admission) {
        let (_, count) = tagged::unpack(self.closed_failures.load(Ordering::Relaxed));
        // Reading first keeps the common case (no failures) free of writes
        // to a shared cache line.
        if count != 0 {
            self.clear_closed_failures(admission.generation);
        }
    }

    fn on_closed_success(&self, admission: &Admission, slow: bool) {
        self.end_closed_failure_run(admission);
        self.record_in_window(
            admission.generation,
            Outcome {
                failed: false,
                slow,
            },
        );
    }

    #[cold]
    fn on_failure(&self, admission: &Admission, slow: bool) {
        let now = self.timeline.now_nanos();
        self.last_failure_at.fetch_max(now, Ordering::Relaxed);
        match admission.mode.state() {
            State::Closed => {
                if self.count_closed_failure(admission.generation)
                    >= self.tuning.failure_threshold()
                {
                    self.transition(
                        Some(StateWord::new(admission.generation, State::Closed)),
                        State::Open,
                        TransitionCause::ConsecutiveFailures,
                    );
                }
                // A no-op once the breaker has tripped: the window only
                // takes outcomes of the current closed period. Nor does it
                // take a call admitted on the fast path, when the breaker
                // kept no window: its success would not be recorded in one
                // put in use since, so neither is its failure.
                if admission.mode != Mode::CLOSED_AT_ONCE {
                    self.record_in_window(admission.generation, Outcome { failed: true, slow });
                }
            }
            State::HalfOpen => {
                // No slot given back first: the period ends here, and a slot
                // freed before the reopen would admit another trial into a
                // period whose trial just failed. The transition rewrites
                // the trial word for the next period anyway.
                self.transition(
                    Some(StateWord::new(admission.generation, State::HalfOpen)),
                    State::Open,
                    TransitionCause::TrialFailed,
                );
            }
            _ => {}
        }
    }

    /// Ends the run of consecutive failures of closed period `generation`.
    /// A read-modify-write, not a store: a failure counted between the
    /// success's read and its write must not survive it (whichever order
    /// the two are taken in, the run is at most one long afterwards).
    #[cold]
    fn clear_closed_failures(&self, generation: u64) {
        if self.is_current(generation) {
            let _ = tagged::update(&self.closed_failures, tag_of(generation), |count| {
                (count != 0).then_some(0)
            });
        }
    }

    /// Counts a failure against closed period `generation` and returns the
    /// period's count, or 0 when the period is over.
    fn count_closed_failure(&self, generation: u64) -> u32 {
        if !self.is_current(generation) {
            return 0;
        }
        tagged::update(&self.closed_failures, tag_of(generation), |count| {
            Some(count.saturating_add(1))
        })
        .map_or(0, |count| count.saturating_add(1))
    }

    /// Adds a closed-period outcome to the window and trips the breaker if a
    /// rate rule says so.
    #[inline]
    /// Takes the generation, not the admission: by reference, the
    /// admission's fields were read back from the caller's stack right
    /// after being stored, a stall on every windowed call (`rate_window`).
    fn record_in_window(&self, generation: u64, outcome: Outcome) {
        let version = self.tuning.version();
        let Some(window) = self.windows.current() else {
            return;
        };
        let expected = StateWord::new(generation, State::Closed);
        if self.state.load(Ordering::Acquire) != expected {
            return;
        }
        let now = if window.needs_time() {
            self.timeline.now_nanos()
        } else {
            0
        };
        // `None` when the period ended since the check above: the window
        // belongs to the next period now.
        let Some(tally) = window.record(tag_of(generation), outcome, now) else {
            return;
        };
        // The rules read alone first, without the sequence check: only a
        // trip pays for making sure the window and the rules it judged by
        // were one configuration's. A reconfiguration under way can only
        // make this call not judge (or misjudge towards not tripping), and
        // the next outcome is judged again.
        if Self::rate_rule_reached(&tally, self.tuning.rate_rules_unchecked()).is_none() {
            return;
        }
        let Some(cause) = self
            .tuning
            .rate_rules_since(version)
            .and_then(|rules| Self::rate_rule_reached(&tally, rules))
        else {
            return;
        };
        self.transition(Some(expected), State::Open, cause);
    }

    /// The rate rule `tally` reaches under `rules`, if any.
    #[inline]
    fn rate_rule_reached(tally: &Tally, rules: RateRules) -> Option<TransitionCause> {
        if tally.calls < rules.minimum_calls {
            return None;
        }
        // A rate is only computed when a rule asks for it and its count is
        // not zero (thresholds are above zero): a division costs more than
        // the rest of a windowed call (`rate_window` bench).
        let reached = |count: u64, threshold: Option<f64>| {
            count != 0
                && threshold.is_some_and(|threshold| {
                    Tally::ratio(count, tally.calls).is_some_and(|rate| rate >= threshold)
                })
        };
        if reached(tally.failures, rules.failure_rate_threshold) {
            Some(TransitionCause::FailureRate)
        } else if reached(tally.slow, rules.slow_call_rate_threshold) {
            Some(TransitionCause::SlowCallRate)
        } else {
            None
        }
    }

    fn on_trial_success(&self, admission: &Admission) {
        if !self.is_current(admission.generation) {
            return;
        }
        let succeeded = |successes: u32| (successes + 1).min(MAX_TRIAL_FIELD);
        let counted = tagged::update(&self.trials, tag_of(admission.generation), |value| {
            let (successes, in_flight) = trial_fields(value);
            let in_flight = if admission.mode.holds().trial() {
                in_flight.saturating_sub(1)
            } else {
                in_flight
            };
            Some(trial_value(succeeded(successes), in_flight))
        });
        let Ok(before) = counted else { return };
        if succeeded(trial_fields(before).0) >= self.tuning.success_threshold() {
            self.transition(
                Some(StateWord::new(admission.generation, State::HalfOpen)),
                State::Closed,
                TransitionCause::TrialsSucceeded,
            );
        }
    }

    /// Gives back a trial slot of half-open period `generation`, if that
    /// period is still current.
    fn release_trial(&self, generation: u64) {
        if self.is_current(generation) {
            let _ = tagged::update(&self.trials, tag_of(generation), |value| {
                let (successes, in_flight) = trial_fields(value);
                Some(trial_value(successes, in_flight.saturating_sub(1)))
            });
        }
    }

    /// Records a success observed outside [`call`](Self::call) or a permit,
    /// as if a call admitted now had succeeded.
    ///
    /// ```
    /// use circuit_runtime::{CircuitBreaker, Config};
    /// let breaker = CircuitBreaker::new("feed", Config::default());
    /// breaker.record_failure();
    /// breaker.record_success();
    /// assert_eq!(breaker.metrics().consecutive_failures, 0);
    /// ```
    pub fn record_success(&self) {
        self.record_now(Verdict::Success);
    }

    /// Records a failure observed outside [`call`](Self::call) or a permit,
    /// as if a call admitted now had failed: it counts toward tripping a
    /// closed breaker and reopens a half-open one.
    ///
    /// ```
    /// use circuit_runtime::{CircuitBreaker, Config, State};
    /// let breaker = CircuitBreaker::new("feed", Config::builder().failure_threshold(2).build()?);
    /// breaker.record_failure();
    /// breaker.record_failure();
    /// assert_eq!(breaker.state(), State::Open);
    /// # Ok::<(), circuit_runtime::ConfigError>(())
    /// ```
    pub fn record_failure(&self) {
        self.record_now(Verdict::Failure);
    }

    fn record_now(&self, verdict: Verdict) {
        let word = self.state.load(Ordering::Acquire);
        let admission = Admission {
            generation: word.generation(),
            mode: Mode::new(word.state(), Holds::NOTHING),
            started_at: 0,
        };
        self.record_outcome(admission, verdict);
    }
}

/// The counters of `#[retry]` calls made through a breaker.
impl CircuitBreaker {
    /// Counts a retry attempt made through this breaker, and reports it:
    /// attempt number `attempt`, after `delay`.
    #[cold]
    pub(crate) fn count_retry(
        &self,
        attempt: u32,
        delay: Duration,
        category: Option<crate::retry::ErrorCategory>,
    ) {
        self.counters.add(Counter::RetryAttempt);
        if self.is_observed() {
            self.emit(&Event::Retry(RetryAttempt {
                name: self.static_name(),
                attempt,
                delay,
                category,
            }));
        }
    }

    /// Counts how a retried call through this breaker ended.
    #[inline]
    pub(crate) fn count_retried_call(&self, succeeded: bool, attempts: u32, budget_spent: bool) {
        self.counters
            .add(match (succeeded, attempts, budget_spent) {
                // The sync path counts this one in place of the plain
                // success; the async path here, after the plain success.
                (true, 1, _) => Counter::RetrySucceededFirstAlsoCounted,
                (true, _, _) => Counter::RetrySucceededLater,
                (false, _, true) => Counter::RetryBudgetExhausted,
                (false, 1, false) => Counter::RetryFailedFirst,
                (false, _, false) => Counter::RetryFailedLater,
            });
    }
}
