//! What a backend that shares breaker state between replicas (such as
//! `circuit-redis`) steers: held trials, the degraded mark, and the
//! transitions other replicas made.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{CircuitBreaker, State};
use crate::events::{DegradedChange, Event, TransitionCause};

impl CircuitBreaker {
    /// Holds or releases the trials of this breaker, for the backends that
    /// share breaker state between processes (such as `circuit-redis`):
    /// while held, an open breaker whose open time is over stays open and
    /// rejects calls (with a `retry_after` of zero) instead of letting a
    /// trial through, so that one replica probes a recovered dependency,
    /// not all of them. A breaker's trials are not held unless a backend
    /// holds them.
    ///
    /// ```
    /// use std::time::Duration;
    /// use circuit_runtime::{CircuitBreaker, Config, ManualClock, State};
    ///
    /// let clock = ManualClock::new();
    /// let config = Config::builder().failure_threshold(1).clock(clock.clone()).build()?;
    /// let breaker = CircuitBreaker::new("db", config);
    /// breaker.record_failure();
    /// breaker.hold_trials(true);
    /// clock.advance(Duration::from_secs(60));
    /// assert!(breaker.try_acquire().is_err(), "another replica probes");
    /// assert_eq!(breaker.state(), State::Open);
    /// breaker.hold_trials(false);
    /// assert_eq!(breaker.try_acquire()?.admitted_in(), State::HalfOpen);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn hold_trials(&self, held: bool) {
        self.trials_held.store(held, Ordering::Release);
    }

    /// Marks the breaker as deciding alone (`true`) because the backend
    /// that shares its state with other replicas (such as
    /// `circuit-redis`) cannot reach its store, or as sharing again
    /// (`false`), saying why. A change is reported as an
    /// [`Event::Degraded`](crate::Event::Degraded), shows in
    /// [snapshots](crate::Snapshot::degraded) and in
    /// [health](crate::Health::degraded_circuits), and is logged (feature
    /// `tracing`). The breaker works the same either way.
    ///
    /// ```
    /// use circuit_runtime::{CircuitBreaker, Event};
    ///
    /// let breaker = CircuitBreaker::new("db", Default::default());
    /// breaker.on_event(|event: &Event| {
    ///     if let Event::Degraded(change) = event {
    ///         assert!(change.degraded);
    ///         assert_eq!(change.reason.as_deref(), Some("Redis: connection refused"));
    ///     }
    /// });
    /// breaker.set_degraded(true, Some("Redis: connection refused"));
    /// assert!(breaker.is_degraded());
    /// ```
    pub fn set_degraded(&self, degraded: bool, reason: Option<&str>) {
        let was = self.degraded.swap(degraded, Ordering::AcqRel);
        if was != degraded {
            self.emit(&Event::Degraded(DegradedChange {
                name: self.static_name(),
                degraded,
                reason: reason.map(str::to_owned),
            }));
        }
    }

    /// Whether the breaker decides alone because its shared state cannot
    /// be reached: see [`set_degraded`](Self::set_degraded).
    ///
    /// ```
    /// let breaker = circuit_runtime::CircuitBreaker::new("db", Default::default());
    /// assert!(!breaker.is_degraded());
    /// ```
    pub fn is_degraded(&self) -> bool {
        self.degraded.load(Ordering::Acquire)
    }

    /// Makes every transition of this breaker into `Open` hold its trials
    /// (`true`), or stops it and releases any hold (`false`); returns
    /// whether it did before. The hold is taken inside the transition, so
    /// no call between the opening and a backend's reaction can run a
    /// trial the backend did not grant: what a backend that grants one
    /// replica at a time its trials (such as `circuit-redis`) turns on for
    /// each breaker it shares, and off when it stops.
    ///
    /// ```
    /// use circuit_runtime::CircuitBreaker;
    /// let breaker = CircuitBreaker::new("db", circuit_runtime::Config::builder().failure_threshold(1).build()?);
    /// breaker.hold_trials_on_open(true);
    /// breaker.record_failure();
    /// assert!(breaker.trials_held());
    /// breaker.hold_trials_on_open(false);
    /// assert!(!breaker.trials_held(), "released");
    /// # Ok::<(), circuit_runtime::ConfigError>(())
    /// ```
    pub fn hold_trials_on_open(&self, on: bool) -> bool {
        let was = self.hold_trials_on_open.swap(on, Ordering::AcqRel);
        if !on {
            self.hold_trials(false);
        }
        was
    }

    /// Whether transitions into `Open` hold the trials: see
    /// [`hold_trials_on_open`](Self::hold_trials_on_open).
    pub(crate) fn holds_trials_on_open(&self) -> bool {
        self.hold_trials_on_open.load(Ordering::Acquire)
    }

    /// Whether a backend holds this breaker's trials: see
    /// [`hold_trials`](Self::hold_trials).
    ///
    /// ```
    /// let breaker = circuit_runtime::CircuitBreaker::new("db", Default::default());
    /// assert!(!breaker.trials_held());
    /// ```
    pub fn trials_held(&self) -> bool {
        self.trials_held.load(Ordering::Acquire)
    }

    /// Applies a change that another replica made to this breaker's name,
    /// for the backends that share breaker state between processes (such
    /// as `circuit-redis`): the breaker moves to `to` at once, its
    /// observers see a transition whose cause is
    /// [`TransitionCause::Remote`], and such a transition is what a backend
    /// must not publish again. An `Open` lasts `open_for` (the time left of
    /// the other replica's open period), or this breaker's own recovery
    /// timeout without it.
    ///
    /// Returns the state it replaced.
    ///
    /// ```
    /// use std::time::Duration;
    /// use circuit_runtime::{CircuitBreaker, Config, ManualClock, State, TransitionCause};
    ///
    /// let clock = ManualClock::new();
    /// let breaker = CircuitBreaker::new("db", Config::builder().clock(clock.clone()).build()?);
    /// breaker.on_transition(|t| assert_eq!(t.cause, TransitionCause::Remote));
    /// breaker.apply_remote(State::Open, Some(Duration::from_secs(7)));
    /// assert_eq!(breaker.state(), State::Open);
    /// assert_eq!(breaker.retry_after(), Some(Duration::from_secs(7)));
    /// clock.advance(Duration::from_secs(7));
    /// assert!(breaker.try_acquire().is_ok(), "the other replica's open time is over");
    /// # Ok::<(), circuit_runtime::ConfigError>(())
    /// ```
    pub fn apply_remote(&self, to: State, open_for: Option<Duration>) -> State {
        let before = self.recorded_state();
        self.transition_for(None, to, TransitionCause::Remote, open_for);
        before
    }
}
