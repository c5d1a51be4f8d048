//! Recording outcomes: what a call's verdict does to the counters, the
//! window and the state of the period it was admitted in.

use super::permit::{Admission, Verdict};
use super::words::{
    generation_of, pack_failures, pack_state, pack_trials, state_of, tag_of, unpack_failures,
    unpack_trials,
};
use super::{CircuitBreaker, State};
use crate::clock::saturating_nanos;
use crate::events::TransitionCause;
use crate::metrics::Counter;
use crate::sync::Ordering;
use crate::window::Outcome;

impl CircuitBreaker {
    /// Applies a permit's verdict. Called exactly once per permit. Takes the
    /// admission by value: a reference pins it to the stack, and copying it
    /// there costs a store-forwarding stall on every call.
    #[inline]
    pub(super) fn record_outcome(&self, admission: Admission, verdict: Verdict) {
        let admission = &admission;
        let slow = admission.started_at != 0
            && matches!(
                verdict,
                Verdict::Success | Verdict::Failure | Verdict::Ignored
            )
            && self.is_slow(admission.started_at);
        match verdict {
            Verdict::Success => self.counters.add(Counter::Successful),
            Verdict::Failure => self.counters.add(Counter::Failed),
            Verdict::Ignored => self.counters.add(Counter::Ignored),
            Verdict::Released => {}
        }
        if slow {
            self.counters.add(Counter::Slow);
        }
        match (admission.state, verdict) {
            (_, Verdict::Failure) => self.on_failure(admission, slow),
            (State::Closed, Verdict::Success) => self.on_closed_success(admission, slow),
            (State::HalfOpen, Verdict::Success) => self.on_trial_success(admission),
            (State::HalfOpen, Verdict::Ignored | Verdict::Released) if admission.trial => {
                self.release_trial(admission.generation);
            }
            _ => {}
        }
    }

    #[cold]
    fn is_slow(&self, started_at: u64) -> bool {
        let elapsed = self.timeline.now_nanos().saturating_sub(started_at);
        self.config
            .slow_call_duration()
            .is_some_and(|slow| elapsed >= saturating_nanos(slow))
    }

    /// Whether `generation` is the current period: the one check that tells
    /// a late outcome from a current one, on the full, never-repeating
    /// generation (counter tags only guard the instant after it).
    #[inline]
    fn is_current(&self, generation: u64) -> bool {
        generation_of(self.state.load(Ordering::Acquire)) == generation
    }

    #[inline]
    fn on_closed_success(&self, admission: &Admission, slow: bool) {
        let failures = self.closed_failures.load(Ordering::Relaxed);
        let (_, count) = unpack_failures(failures);
        // Reading first keeps the common case (no failures) free of writes
        // to a shared cache line.
        if count != 0 {
            self.clear_closed_failures(admission.generation, failures);
        }
        if self.window.is_some() {
            self.record_in_window(
                admission,
                Outcome {
                    failed: false,
                    slow,
                },
            );
        }
    }

    #[cold]
    fn on_failure(&self, admission: &Admission, slow: bool) {
        let now = self.timeline.now_nanos();
        self.last_failure_at.fetch_max(now, Ordering::Relaxed);
        match admission.state {
            State::Closed => {
                if self.count_closed_failure(admission.generation)
                    >= self.config.failure_threshold()
                {
                    self.transition(
                        Some(pack_state(admission.generation, State::Closed)),
                        State::Open,
                        TransitionCause::ConsecutiveFailures,
                    );
                }
                // A no-op once the breaker has tripped: the window only
                // takes outcomes of the current closed period.
                self.record_in_window(admission, Outcome { failed: true, slow });
            }
            State::HalfOpen => {
                // No slot given back first: the period ends here, and a slot
                // freed before the reopen would admit another trial into a
                // period whose trial just failed. The transition rewrites
                // the trial word for the next period anyway.
                self.transition(
                    Some(pack_state(admission.generation, State::HalfOpen)),
                    State::Open,
                    TransitionCause::TrialFailed,
                );
            }
            _ => {}
        }
    }

    /// Ends the run of consecutive failures of closed period `generation`.
    /// Retried until it holds: a failure counted between the load and the
    /// swap must not survive the success (whichever order the two are taken
    /// in, the run is at most one long afterwards).
    #[cold]
    fn clear_closed_failures(&self, generation: u64, mut word: u64) {
        let tag = tag_of(generation);
        if !self.is_current(generation) {
            return;
        }
        loop {
            let (word_tag, count) = unpack_failures(word);
            if word_tag != tag || count == 0 {
                return;
            }
            match self.closed_failures.compare_exchange_weak(
                word,
                pack_failures(tag, 0),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return,
                Err(actual) => word = actual,
            }
        }
    }

    /// Counts a failure against closed period `generation` and returns the
    /// period's count, or 0 when the period is over.
    fn count_closed_failure(&self, generation: u64) -> u32 {
        if !self.is_current(generation) {
            return 0;
        }
        let tag = tag_of(generation);
        let mut word = self.closed_failures.load(Ordering::Acquire);
        loop {
            let (word_tag, count) = unpack_failures(word);
            if word_tag != tag {
                return 0;
            }
            let counted = count.saturating_add(1);
            match self.closed_failures.compare_exchange_weak(
                word,
                pack_failures(tag, counted),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return counted,
                Err(actual) => word = actual,
            }
        }
    }

    /// Adds a closed-period outcome to the window and trips the breaker if a
    /// rate rule says so.
    #[inline]
    fn record_in_window(&self, admission: &Admission, outcome: Outcome) {
        let Some(window) = &self.window else { return };
        let expected = pack_state(admission.generation, State::Closed);
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
        let Some(tally) = window.record(tag_of(admission.generation), outcome, now) else {
            return;
        };
        if tally.calls < u64::from(self.config.minimum_calls()) {
            return;
        }
        let reached = |rate: Option<f64>, threshold: Option<f64>| matches!((rate, threshold), (Some(rate), Some(threshold)) if rate >= threshold);
        let cause = if reached(tally.failure_rate(), self.config.failure_rate_threshold()) {
            TransitionCause::FailureRate
        } else if reached(
            tally.slow_call_rate(),
            self.config.slow_call_rate_threshold(),
        ) {
            TransitionCause::SlowCallRate
        } else {
            return;
        };
        self.transition(Some(expected), State::Open, cause);
    }

    fn on_trial_success(&self, admission: &Admission) {
        if !self.is_current(admission.generation) {
            return;
        }
        let tag = tag_of(admission.generation);
        let mut trials = self.trials.load(Ordering::Acquire);
        let successes = loop {
            let (trials_tag, successes, in_flight) = unpack_trials(trials);
            if trials_tag != tag {
                return;
            }
            let in_flight = if admission.trial {
                in_flight.saturating_sub(1)
            } else {
                in_flight
            };
            let successes = (successes + 1).min(0xFFFF);
            match self.trials.compare_exchange_weak(
                trials,
                pack_trials(tag, successes, in_flight),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break successes,
                Err(actual) => trials = actual,
            }
        };
        if successes >= self.config.success_threshold() {
            self.transition(
                Some(pack_state(admission.generation, State::HalfOpen)),
                State::Closed,
                TransitionCause::TrialsSucceeded,
            );
        }
    }

    /// Gives back a trial slot of half-open period `generation`, if that
    /// period is still current.
    fn release_trial(&self, generation: u64) {
        if !self.is_current(generation) {
            return;
        }
        let tag = tag_of(generation);
        let _ = self
            .trials
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |trials| {
                let (trials_tag, successes, in_flight) = unpack_trials(trials);
                (trials_tag == tag)
                    .then(|| pack_trials(tag, successes, in_flight.saturating_sub(1)))
            });
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
            generation: generation_of(word),
            state: state_of(word),
            trial: false,
            started_at: 0,
        };
        self.record_outcome(admission, verdict);
    }
}
