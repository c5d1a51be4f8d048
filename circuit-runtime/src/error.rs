//! The errors a caller can see: a rejected call, a failed call, and an
//! invalid configuration.

use std::fmt;
use std::time::Duration;

use crate::names::Name;
use crate::State;

/// An option of [`ConfigBuilder`](crate::ConfigBuilder) is out of range or
/// contradicts another. The message names the option and what it accepts.
///
/// ```
/// use circuit_runtime::{Config, ConfigError};
///
/// match Config::builder().jitter(2.0).build() {
///     Err(ConfigError::OutOfRange { option, expected, value }) => {
///         assert_eq!((option, expected, value.as_str()), ("jitter", "between 0 and 1", "2"));
///     }
///     other => panic!("expected a range error, got {other:?}"),
/// }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A single option's value is outside its allowed range.
    #[error("`{option}` must be {expected}, got {value}")]
    OutOfRange {
        /// The option, named as its builder method.
        option: &'static str,
        /// The allowed range, in words.
        expected: &'static str,
        /// The rejected value.
        value: String,
    },
    /// Both `window_size` and `window_duration` were set.
    #[error(
        "`window_size` and `window_duration` cannot both be set: a breaker keeps either a count \
         window or a time window"
    )]
    ConflictingWindows,
    /// `minimum_calls` is larger than the count window can ever hold.
    #[error(
        "`minimum_calls` ({minimum_calls}) must be at most `window_size` ({window_size}), or the \
         window never holds enough calls to judge a rate"
    )]
    MinimumCallsExceedWindow {
        /// The requested minimum.
        minimum_calls: u32,
        /// The window's size.
        window_size: u32,
    },
    /// `max_recovery_timeout` is shorter than `recovery_timeout`.
    #[error(
        "`max_recovery_timeout` ({max_recovery_timeout:?}) must be at least `recovery_timeout` \
         ({recovery_timeout:?})"
    )]
    MaxRecoveryTimeoutTooShort {
        /// The requested cap.
        max_recovery_timeout: Duration,
        /// The base open time it would cut short.
        recovery_timeout: Duration,
    },
    /// A retry configuration's `max_delay` is shorter than its
    /// `base_delay`.
    #[error("{}", circuit_spec::retry::delays(*.base_delay, *.max_delay).err().unwrap_or_default())]
    MaxDelayBelowBaseDelay {
        /// The first retry's delay.
        base_delay: Duration,
        /// The cap that would cut it short.
        max_delay: Duration,
    },
    /// `slow_call_rate_threshold` was set without `slow_call_duration`.
    #[error("`slow_call_rate_threshold` needs `slow_call_duration` to say which calls are slow")]
    SlowCallRateWithoutDuration,
}

/// A call was rejected without running because the breaker is open, forced
/// open, half-open with every trial slot taken, or at its limit of
/// concurrent calls (see [`is_concurrency_limit`](Self::is_concurrency_limit)).
///
/// Cheap to clone, and `Send + Sync + 'static`, so it converts into any
/// application error type.
///
/// ```
/// use circuit_runtime::{CircuitBreaker, Config, State};
///
/// let breaker = CircuitBreaker::new("quotes", Config::default());
/// breaker.force_open();
/// let err = breaker.try_acquire().unwrap_err();
/// assert_eq!(err.name(), "quotes");
/// assert_eq!(err.state(), State::ForcedOpen);
/// assert_eq!(err.retry_after(), None);
/// assert_eq!(err.to_string(), "circuit breaker 'quotes' is forced open");
/// ```
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", RejectionMessage(self))]
pub struct CircuitOpenError {
    name: &'static Name,
    state: RejectedIn,
    /// [`retry_after`](Self::retry_after) in nanoseconds, [`UNKNOWN`] for
    /// `None`: a rejection is 24 bytes instead of 40, so a `Result` carrying
    /// it moves less on every rejected call, and the division into a
    /// `Duration` happens only for callers who ask.
    retry_after_nanos: u64,
}

/// The states that reject calls. Word-sized on purpose: a `Result` around a
/// rejection keeps its own discriminant in this field's unused values, and
/// a discriminant written as a whole word can be copied as one (a byte
/// written and then read back as part of a word stalls the copy; measured
/// 4 ns on every closed-path call whose result the caller moves).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
enum RejectedIn {
    Open = 1,
    HalfOpen,
    ForcedOpen,
    /// At `max_concurrent_calls`, in the state named: a bulkhead rejection
    /// keeps the state it met, so the variants carry both.
    FullClosed,
    FullHalfOpen,
    FullDisabled,
}

/// `retry_after_nanos` when the time is not known. No real wait is this
/// long: it is the end of a breaker's timeline.
const UNKNOWN: u64 = u64::MAX;

impl CircuitOpenError {
    #[inline]
    pub(crate) fn new(name: &'static Name, state: State, retry_after_nanos: Option<u64>) -> Self {
        let state = match state {
            State::HalfOpen => RejectedIn::HalfOpen,
            State::ForcedOpen => RejectedIn::ForcedOpen,
            // Only the three rejecting states reach here.
            _ => RejectedIn::Open,
        };
        Self {
            name,
            state,
            retry_after_nanos: retry_after_nanos.map_or(UNKNOWN, |nanos| nanos.min(UNKNOWN - 1)),
        }
    }

    /// A call turned away by a breaker in `state` (one that admits calls)
    /// because `max_concurrent_calls` calls were running.
    #[cold]
    pub(crate) fn at_limit(name: &'static Name, state: State) -> Self {
        let state = match state {
            State::HalfOpen => RejectedIn::FullHalfOpen,
            State::Disabled => RejectedIn::FullDisabled,
            // Only the three admitting states reach here.
            _ => RejectedIn::FullClosed,
        };
        Self {
            name,
            state,
            retry_after_nanos: UNKNOWN,
        }
    }

    /// The name of the breaker that rejected the call.
    ///
    /// ```
    /// # let breaker = circuit_runtime::CircuitBreaker::new("quotes", Default::default());
    /// # breaker.force_open();
    /// let err = breaker.try_acquire().unwrap_err();
    /// assert_eq!(err.name(), "quotes");
    /// ```
    pub fn name(&self) -> &'static str {
        self.name.as_str()
    }

    /// The breaker's state when it rejected the call.
    ///
    /// ```
    /// # let breaker = circuit_runtime::CircuitBreaker::new("quotes", Default::default());
    /// # breaker.force_open();
    /// let err = breaker.try_acquire().unwrap_err();
    /// assert_eq!(err.state(), circuit_runtime::State::ForcedOpen);
    /// ```
    pub fn state(&self) -> State {
        match self.state {
            RejectedIn::Open => State::Open,
            RejectedIn::HalfOpen | RejectedIn::FullHalfOpen => State::HalfOpen,
            RejectedIn::ForcedOpen => State::ForcedOpen,
            RejectedIn::FullClosed => State::Closed,
            RejectedIn::FullDisabled => State::Disabled,
        }
    }

    /// Whether the call was rejected because the breaker was running
    /// `max_concurrent_calls` calls already, rather than because it was
    /// open: the dependency may be healthy, only busy. [`state`](Self::state)
    /// is then the state that admits calls the breaker was in (`Closed`,
    /// `HalfOpen` or `Disabled`), and [`retry_after`](Self::retry_after)
    /// is `None`, since no one knows when a running call ends.
    ///
    /// ```
    /// use circuit_runtime::{CircuitBreaker, Config, State};
    ///
    /// let breaker = CircuitBreaker::new("db", Config::builder().max_concurrent_calls(1).build()?);
    /// let running = breaker.try_acquire()?;
    /// let err = breaker.try_acquire().unwrap_err();
    /// assert!(err.is_concurrency_limit());
    /// assert_eq!(err.state(), State::Closed);
    /// assert_eq!(err.retry_after(), None);
    /// assert_eq!(err.to_string(), "circuit breaker 'db' is at its limit of concurrent calls");
    /// running.record_success();
    /// assert!(breaker.try_acquire().is_ok(), "the slot is free again");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_concurrency_limit(&self) -> bool {
        matches!(
            self.state,
            RejectedIn::FullClosed | RejectedIn::FullHalfOpen | RejectedIn::FullDisabled
        )
    }

    /// How long until the breaker lets a trial call through, when that is
    /// known: `Some` for an open breaker, `None` for one forced open or
    /// half-open with every trial slot taken, or at its limit of
    /// concurrent calls. `Some(Duration::ZERO)` means
    /// "now": the open time had already run out, but this call had spent
    /// its one move to half-open (timeouts shorter than a transition), so
    /// the next call makes the move.
    ///
    /// ```
    /// use std::time::Duration;
    /// use circuit_runtime::{CircuitBreaker, Config, ManualClock};
    ///
    /// let clock = ManualClock::new();
    /// let config = Config::builder()
    ///     .failure_threshold(1)
    ///     .recovery_timeout(Duration::from_secs(12))
    ///     .clock(clock.clone())
    ///     .build()?;
    /// let breaker = CircuitBreaker::new("quotes", config);
    /// breaker.record_failure();
    ///
    /// let err = breaker.try_acquire().unwrap_err();
    /// assert_eq!(err.retry_after(), Some(Duration::from_secs(12)));
    /// assert_eq!(err.to_string(), "circuit breaker 'quotes' is open; retry in 12.0s");
    /// # Ok::<(), circuit_runtime::ConfigError>(())
    /// ```
    pub fn retry_after(&self) -> Option<Duration> {
        (self.retry_after_nanos != UNKNOWN).then(|| Duration::from_nanos(self.retry_after_nanos))
    }

    /// [`retry_after`](Self::retry_after) in whole seconds, rounded up:
    /// the value of an HTTP `Retry-After` header, which never says `0`
    /// while any time is left.
    ///
    /// ```
    /// use std::time::Duration;
    /// use circuit_runtime::{CircuitBreaker, Config, ManualClock};
    ///
    /// let clock = ManualClock::new();
    /// let config = Config::builder().failure_threshold(1).clock(clock.clone()).build()?;
    /// let breaker = CircuitBreaker::new("quotes", config);
    /// breaker.record_failure();
    /// clock.advance(Duration::from_millis(59_500));
    /// assert_eq!(breaker.try_acquire().unwrap_err().retry_after_secs(), Some(1));
    /// # Ok::<(), circuit_runtime::ConfigError>(())
    /// ```
    pub fn retry_after_secs(&self) -> Option<u64> {
        self.retry_after()
            .map(|after| after.as_secs() + u64::from(after.subsec_nanos() > 0))
    }
}

impl fmt::Debug for CircuitOpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("CircuitOpenError");
        out.field("name", &self.name())
            .field("state", &self.state())
            .field("retry_after", &self.retry_after());
        // Only when set: the other rejections print as they always have,
        // and `state: Closed` alone would read as a contradiction.
        if self.is_concurrency_limit() {
            out.field("concurrency_limit", &true);
        }
        out.finish()
    }
}

struct RejectionMessage<'a>(&'a CircuitOpenError);

impl fmt::Display for RejectionMessage<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "circuit breaker '{}' is ", self.0.name)?;
        self.0.write_condition(f)
    }
}

impl CircuitOpenError {
    /// The breaker's condition in words: `open; retry in 12.0s`.
    pub(crate) fn write_condition(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_concurrency_limit() {
            return f.write_str("at its limit of concurrent calls");
        }
        match self.state() {
            State::ForcedOpen => f.write_str("forced open")?,
            State::HalfOpen => f.write_str("half-open and every trial slot is taken")?,
            _ => f.write_str("open")?,
        }
        if let Some(retry_after) = self.retry_after() {
            write!(f, "; retry in {:.1}s", retry_after.as_secs_f64())?;
        }
        Ok(())
    }
}

/// A call ran past its time limit and was cut off: see
/// [`CircuitBreaker::call_async_timeout`](crate::CircuitBreaker::call_async_timeout).
/// The breaker counted it as a failure and as a slow call; a protected
/// function's error type gets it through `From<TimeoutError>`.
///
/// ```
/// use std::time::Duration;
/// use circuit_runtime::{CallError, CircuitBreaker, Config, TimeoutError};
///
/// #[derive(Debug)]
/// enum ApiError { TimedOut(TimeoutError) }
/// impl From<TimeoutError> for ApiError {
///     fn from(timeout: TimeoutError) -> Self { ApiError::TimedOut(timeout) }
/// }
///
/// # futures::executor::block_on(async {
/// let breaker = CircuitBreaker::new("reports", Config::default());
/// let never = std::future::pending::<Result<(), ApiError>>();
/// let sleep_at_once = |_| std::future::ready(()); // a real service passes its runtime's sleep
/// let result = breaker.call_async_timeout(Duration::from_secs(2), sleep_at_once, never).await;
/// match result {
///     Err(CallError::Failed(ApiError::TimedOut(timeout))) => {
///         assert_eq!(timeout.to_string(), "circuit breaker 'reports': the call did not finish within 2s");
///     }
///     other => panic!("expected a timeout, got {other:?}"),
/// }
/// assert_eq!(breaker.metrics().failed_calls, 1);
/// # });
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimeoutError {
    name: &'static str,
    limit: Duration,
}

impl fmt::Display for TimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let limit = circuit_spec::duration::format(self.limit);
        if self.name.is_empty() {
            // An attempt of `retry_async`, which no breaker names.
            write!(f, "the attempt did not finish within {limit}")
        } else {
            write!(
                f,
                "circuit breaker '{}': the call did not finish within {limit}",
                self.name
            )
        }
    }
}

impl std::error::Error for TimeoutError {}

impl TimeoutError {
    pub(crate) fn new(name: &'static str, limit: Duration) -> Self {
        TimeoutError { name, limit }
    }

    /// The name of the breaker whose call timed out; empty for an
    /// attempt of [`retry_async`](crate::retry::retry_async), which no
    /// breaker names.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The time limit it ran past.
    pub fn limit(&self) -> Duration {
        self.limit
    }
}

/// What a protected call returns when it does not succeed: either the
/// breaker rejected it, or it ran and failed with the caller's own error.
///
/// Both variants display and chain to their inner error unchanged.
///
/// ```
/// use circuit_runtime::{CallError, CircuitBreaker, Config};
///
/// let breaker = CircuitBreaker::new("inventory", Config::default());
/// match breaker.call(|| Err::<(), _>("timeout")) {
///     Err(CallError::Failed(err)) => assert_eq!(err, "timeout"),
///     other => panic!("unexpected {other:?}"),
/// }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CallError<E> {
    /// The breaker did not run the call.
    #[error(transparent)]
    Rejected(CircuitOpenError),
    /// The call ran and returned this error.
    #[error(transparent)]
    Failed(E),
}

impl<E> CallError<E> {
    /// Whether the breaker rejected the call without running it.
    ///
    /// ```
    /// use circuit_runtime::CallError;
    /// assert!(!CallError::Failed("boom").is_rejected());
    /// ```
    pub fn is_rejected(&self) -> bool {
        matches!(self, CallError::Rejected(_))
    }

    /// The call's own error, if it ran and failed.
    ///
    /// ```
    /// use circuit_runtime::CallError;
    /// assert_eq!(CallError::Failed("boom").into_failed(), Some("boom"));
    /// ```
    pub fn into_failed(self) -> Option<E> {
        match self {
            CallError::Failed(err) => Some(err),
            CallError::Rejected(_) => None,
        }
    }

    /// Why a fallback would run for this error: what a fallback after a
    /// tower service of [`CircuitBreakerLayer`](crate::tower::CircuitBreakerLayer)
    /// or after [`call`](crate::CircuitBreaker::call) is told.
    ///
    /// ```
    /// use circuit_runtime::{CallError, FallbackCause};
    /// let error = CallError::Failed("connection reset");
    /// assert!(matches!(error.cause(), FallbackCause::Failed(&"connection reset")));
    /// ```
    pub fn cause(&self) -> crate::FallbackCause<'_, E> {
        match self {
            CallError::Rejected(rejection) => crate::FallbackCause::Rejected(rejection.clone()),
            CallError::Failed(error) => crate::FallbackCause::Failed(error),
        }
    }

    /// Folds both variants into one error type, for callers whose error
    /// already converts from a rejection.
    ///
    /// ```
    /// use circuit_runtime::{CallError, CircuitOpenError};
    ///
    /// #[derive(Debug)]
    /// enum ApiError { Unavailable, Timeout }
    /// impl From<CircuitOpenError> for ApiError {
    ///     fn from(_: CircuitOpenError) -> Self { ApiError::Unavailable }
    /// }
    ///
    /// let err: ApiError = CallError::Failed(ApiError::Timeout).into_inner();
    /// assert!(matches!(err, ApiError::Timeout));
    /// ```
    pub fn into_inner(self) -> E
    where
        E: From<CircuitOpenError>,
    {
        match self {
            CallError::Failed(err) => err,
            CallError::Rejected(rejection) => E::from(rejection),
        }
    }
}

/// A rejection as an I/O error (kind `Other`, the rejection as its source),
/// so functions returning `std::io::Result` can be protected by
/// `#[circuit_breaker]` without a fallback.
///
/// ```
/// use circuit_runtime::CircuitBreaker;
///
/// let breaker = CircuitBreaker::new("disk", Default::default());
/// breaker.force_open();
/// let err = std::io::Error::from(breaker.try_acquire().unwrap_err());
/// assert_eq!(err.to_string(), "circuit breaker 'disk' is forced open");
/// ```
impl From<CircuitOpenError> for std::io::Error {
    fn from(rejection: CircuitOpenError) -> Self {
        std::io::Error::other(rejection)
    }
}

/// A call cut off at its time limit is an [`std::io::ErrorKind::TimedOut`],
/// so `io::Result` functions take `timeout` and `attempt_timeout` as they
/// are.
impl From<TimeoutError> for std::io::Error {
    fn from(timeout: TimeoutError) -> Self {
        std::io::Error::new(std::io::ErrorKind::TimedOut, timeout)
    }
}

#[cfg(test)]
mod tests {
    use std::mem::size_of;
    use std::time::Duration;

    use super::{CallError, CircuitOpenError};
    use crate::{CircuitBreaker, Config, State};

    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_rejection_is_three_words_and_a_result_around_it_no_more() {
        assert_eq!(size_of::<CircuitOpenError>(), 24);
        assert_eq!(size_of::<CallError<()>>(), 24);
        assert_eq!(size_of::<Result<u64, CallError<()>>>(), 24);
    }

    #[test]
    fn a_rejection_on_the_real_clock_waits_at_most_the_open_time() {
        let open_for = Duration::from_secs(60);
        let config = Config::builder()
            .failure_threshold(1)
            .recovery_timeout(open_for)
            .build()
            .unwrap();
        let breaker = CircuitBreaker::new("error.real_clock", config);
        breaker.record_failure();
        let rejection = breaker.try_acquire().unwrap_err();
        let retry_after = rejection.retry_after().unwrap();
        assert!(retry_after <= open_for, "{retry_after:?}");
        assert!(retry_after > Duration::from_secs(30), "{retry_after:?}");
        assert_eq!(rejection.state(), State::Open);
    }

    #[test]
    fn debug_shows_what_the_accessors_show() {
        let breaker = CircuitBreaker::new("error.debug", Config::default());
        breaker.force_open();
        let rejection = breaker.try_acquire().unwrap_err();
        assert_eq!(
            format!("{rejection:?}"),
            r#"CircuitOpenError { name: "error.debug", state: ForcedOpen, retry_after: None }"#
        );
    }

    #[test]
    fn a_concurrency_rejection_is_three_words_too_and_debug_says_what_it_is() {
        let breaker = CircuitBreaker::new(
            "error.full",
            Config::builder().max_concurrent_calls(1).build().unwrap(),
        );
        let _running = breaker.try_acquire().unwrap();
        let rejection = breaker.try_acquire().unwrap_err();
        assert!(rejection.is_concurrency_limit());
        assert_eq!(
            format!("{rejection:?}"),
            r#"CircuitOpenError { name: "error.full", state: Closed, retry_after: None, concurrency_limit: true }"#
        );
        let result: Result<u64, CallError<()>> = Err(CallError::Rejected(rejection));
        assert!(matches!(result, Err(CallError::Rejected(r)) if r.is_concurrency_limit()));
    }
}
