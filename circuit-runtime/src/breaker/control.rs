//! Manual controls: an operator's reset, forced open and disable, each a
//! transition that no call caused.

use super::{CircuitBreaker, State};
use crate::events::TransitionCause;

impl CircuitBreaker {
    /// Closes the breaker whatever its state, clearing its consecutive
    /// failures, trials and window (not its monotonic call counters). Calls
    /// in flight from before the reset no longer count.
    ///
    /// ```
    /// use circuit_runtime::{CircuitBreaker, State};
    /// let breaker = CircuitBreaker::new("feed", Default::default());
    /// breaker.force_open();
    /// breaker.reset();
    /// assert_eq!(breaker.state(), State::Closed);
    /// ```
    pub fn reset(&self) {
        self.command(State::Closed, TransitionCause::Reset);
    }

    /// Rejects every call until [`reset`](Self::reset), e.g. while a
    /// dependency is under maintenance.
    ///
    /// ```
    /// use circuit_runtime::{CircuitBreaker, State};
    /// let breaker = CircuitBreaker::new("feed", Default::default());
    /// breaker.force_open();
    /// assert!(breaker.try_acquire().is_err());
    /// ```
    pub fn force_open(&self) {
        self.command(State::ForcedOpen, TransitionCause::ForcedOpen);
    }

    /// Lets every call through until [`reset`](Self::reset), still counting
    /// outcomes in the metrics but never tripping.
    ///
    /// ```
    /// use circuit_runtime::{CircuitBreaker, Config, State};
    /// let breaker = CircuitBreaker::new("feed", Config::builder().failure_threshold(1).build()?);
    /// breaker.disable();
    /// breaker.record_failure();
    /// assert_eq!(breaker.state(), State::Disabled);
    /// assert_eq!(breaker.metrics().failed_calls, 1);
    /// # Ok::<(), circuit_runtime::ConfigError>(())
    /// ```
    pub fn disable(&self) {
        self.command(State::Disabled, TransitionCause::Disabled);
    }

    /// Applies a manual command; returns the state it replaced.
    pub(crate) fn command(&self, to: State, cause: TransitionCause) -> State {
        let before = self.recorded_state();
        self.transition(None, to, cause);
        before
    }
}
