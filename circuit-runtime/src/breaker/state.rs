//! The states a breaker can be in.

use std::fmt;

/// Where a breaker stands.
///
/// ```
/// use circuit_runtime::State;
/// assert_eq!(State::HalfOpen.to_string(), "half_open");
/// assert!(State::ForcedOpen.rejects_calls());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// Calls run; failures are counted.
    Closed,
    /// Calls are rejected until the recovery timeout elapses.
    Open,
    /// A limited number of trial calls run to decide between closing and
    /// reopening.
    HalfOpen,
    /// Every call is rejected until [`CircuitBreaker::reset`](crate::CircuitBreaker::reset).
    ForcedOpen,
    /// Every call runs and is counted, but nothing trips the breaker, until
    /// [`CircuitBreaker::reset`](crate::CircuitBreaker::reset).
    Disabled,
}

impl State {
    /// The state's name in `snake_case`, as metrics and logs spell it.
    ///
    /// ```
    /// assert_eq!(circuit_runtime::State::ForcedOpen.as_str(), "forced_open");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::Open => "open",
            State::HalfOpen => "half_open",
            State::ForcedOpen => "forced_open",
            State::Disabled => "disabled",
        }
    }

    /// Whether a breaker in this state rejects calls (at least some of them,
    /// for `HalfOpen`): what a health endpoint reports as "degraded".
    ///
    /// ```
    /// use circuit_runtime::State;
    /// assert!(State::Open.rejects_calls());
    /// assert!(!State::Disabled.rejects_calls());
    /// ```
    pub const fn rejects_calls(self) -> bool {
        matches!(self, State::Open | State::HalfOpen | State::ForcedOpen)
    }

    pub(super) const fn code(self) -> u64 {
        match self {
            State::Closed => 0,
            State::Open => 1,
            State::HalfOpen => 2,
            State::ForcedOpen => 3,
            State::Disabled => 4,
        }
    }

    pub(super) const fn from_code(code: u64) -> State {
        match code {
            1 => State::Open,
            2 => State::HalfOpen,
            3 => State::ForcedOpen,
            4 => State::Disabled,
            _ => State::Closed,
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad` honours width and alignment, for tables of breakers.
        f.pad(self.as_str())
    }
}
