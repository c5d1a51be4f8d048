//! What a breaker reports: the state a call would meet, the time to its
//! next trial, its metrics, and its clock's time.

use std::time::{Duration, Instant};

use super::words::trial_fields;
use super::{CircuitBreaker, State};
use crate::metrics::{Counter, Metrics};
use crate::sync::Ordering;
use crate::window::Tally;

impl CircuitBreaker {
    /// The state a call arriving now would meet.
    ///
    /// An open breaker whose recovery timeout has elapsed reads `HalfOpen`:
    /// the next call is a trial. Reading changes nothing: the move to
    /// half-open, its hooks and its half-open timer happen when that call
    /// arrives, so an idle breaker is neither reported down for ever nor
    /// moved along by whoever watches it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use circuit_runtime::{CircuitBreaker, Config, ManualClock, State};
    ///
    /// let clock = ManualClock::new();
    /// let config = Config::builder().failure_threshold(1).clock(clock.clone()).build()?;
    /// let breaker = CircuitBreaker::new("cache", config);
    /// breaker.record_failure();
    /// assert_eq!(breaker.state(), State::Open);
    /// clock.advance(Duration::from_secs(60));
    /// assert_eq!(breaker.state(), State::HalfOpen, "the next call is a trial");
    /// assert_eq!(breaker.metrics().times_half_opened, 0, "reading moved nothing");
    /// # Ok::<(), circuit_runtime::ConfigError>(())
    /// ```
    pub fn state(&self) -> State {
        match self.recorded_state() {
            State::Open if self.nanos_left_open().is_none() && !self.trials_held() => {
                State::HalfOpen
            }
            state => state,
        }
    }

    /// How long until the next trial: the time left of an open period,
    /// `None` in any other state (and once the open time is over).
    ///
    /// ```
    /// use circuit_runtime::CircuitBreaker;
    /// let breaker = CircuitBreaker::new("db", Default::default());
    /// assert_eq!(breaker.retry_after(), None);
    /// breaker.apply_remote(circuit_runtime::State::Open, None);
    /// assert!(breaker.retry_after().is_some());
    /// ```
    pub fn retry_after(&self) -> Option<Duration> {
        (self.recorded_state() == State::Open)
            .then(|| self.nanos_left_open())
            .flatten()
            .map(Duration::from_nanos)
    }

    /// The state the state word holds, which an elapsed open period has
    /// not moved yet.
    pub(crate) fn recorded_state(&self) -> State {
        self.state.load(Ordering::Acquire).state()
    }

    /// The breaker's counters and current view.
    ///
    /// ```
    /// use circuit_runtime::CircuitBreaker;
    /// let breaker = CircuitBreaker::new("feed", Default::default());
    /// breaker.force_open();
    /// let _ = breaker.try_acquire();
    /// assert_eq!(breaker.metrics().rejected_calls, 1);
    /// assert_eq!(breaker.metrics().times_opened, 0, "forced open is not a trip");
    /// ```
    pub fn metrics(&self) -> Metrics {
        let word = self.state.load(Ordering::Acquire);
        let consecutive_failures =
            word.period_value(self.closed_failures.load(Ordering::Acquire), State::Closed);
        let trials = word.period_value(self.trials.load(Ordering::Acquire), State::HalfOpen);
        let trial_successes = trial_fields(trials).0;
        let tally = self
            .windows
            .current()
            .map(|window| window.tally(self.timeline.now_nanos()));
        // First-attempt successes of `#[retry]` calls are counted apart,
        // in place of the plain success (see `Verdict::FirstRetrySuccess`).
        let successful_calls = self.counters.get(Counter::Successful)
            + self.counters.get(Counter::RetrySucceededFirst);
        let failed_calls = self.counters.get(Counter::Failed);
        let ignored_calls = self.counters.get(Counter::Ignored);
        let at = |nanos: u64| (nanos != 0).then(|| self.timeline.instant(nanos));
        Metrics {
            total_calls: successful_calls + failed_calls + ignored_calls,
            successful_calls,
            failed_calls,
            ignored_calls,
            rejected_calls: self.counters.get(Counter::Rejected),
            bulkhead_rejected: self.counters.get(Counter::BulkheadRejected),
            fallbacks_after_rejection: self.counters.get(Counter::FallbackAfterRejection),
            fallbacks_after_failure: self.counters.get(Counter::FallbackAfterFailure),
            retry_attempts: self.counters.get(Counter::RetryAttempt),
            retry_calls: self.counters.retry_calls(),
            slow_calls: self.counters.get(Counter::Slow),
            times_opened: self.times_opened.load(Ordering::Relaxed),
            times_half_opened: self.times_half_opened.load(Ordering::Relaxed),
            times_closed: self.times_closed.load(Ordering::Relaxed),
            consecutive_failures,
            trial_successes,
            failure_rate: tally.and_then(Tally::failure_rate),
            slow_call_rate: tally.and_then(Tally::slow_call_rate),
            last_failure_at: at(self.last_failure_at.load(Ordering::Relaxed)),
            last_transition_at: at(self.entered_at.load(Ordering::Acquire)),
        }
    }

    /// The window's failure and slow-call rates, once it holds
    /// `minimum_calls` outcomes and its rate rules judge them; `None`
    /// before that, or without a window.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) fn judged_rates(&self) -> Option<(f64, f64)> {
        let tally = self.windows.current()?.tally(self.timeline.now_nanos());
        if tally.calls < self.tuning.rate_rules_unchecked().minimum_calls {
            return None;
        }
        tally.failure_rate().zip(tally.slow_call_rate())
    }

    /// The current instant on this breaker's clock (the manual clock, if it
    /// has one).
    ///
    /// ```
    /// use std::time::Duration;
    /// use circuit_runtime::{CircuitBreaker, Config, ManualClock};
    /// let clock = ManualClock::new();
    /// let breaker = CircuitBreaker::new("feed", Config::builder().clock(clock.clone()).build()?);
    /// clock.advance(Duration::from_secs(3));
    /// assert_eq!(breaker.now(), clock.now());
    /// # Ok::<(), circuit_runtime::ConfigError>(())
    /// ```
    pub fn now(&self) -> Instant {
        self.timeline.instant(self.timeline.now_nanos())
    }
}
