//! How a breaker decides: thresholds, windows, timeouts. Built through
//! [`ConfigBuilder`] and checked against the option table of
//! `circuit-spec`, the one the attribute and the file loader check too.

use std::time::Duration;

use circuit_spec::{Key, Problem, Resolved, Settings, Value};

use crate::clock::{Clock, ManualClock};
use crate::error::ConfigError;

#[cfg(feature = "toml")]
pub(crate) mod file;
#[cfg(feature = "watch")]
pub(crate) mod reload;
#[cfg(feature = "serde")]
mod serde;

/// The largest `success_threshold` and `half_open_max_calls`: both are
/// packed into 16-bit fields of one atomic word so a trial is admitted with a
/// single compare-and-swap.
pub const MAX_TRIAL_CALLS: u32 = circuit_spec::MAX_TRIAL_CALLS;

/// The largest `window_size`: each outcome in a count window is one 8-byte
/// atomic word, so the largest window takes 8 MB.
pub const MAX_WINDOW_SIZE: u32 = circuit_spec::MAX_WINDOW_SIZE;

/// The validated settings of one breaker.
///
/// Every option has a builder method of the same name and a getter of the
/// same name; the defaults are those of [`Config::default`].
///
/// ```
/// use std::time::Duration;
/// use circuit_runtime::Config;
///
/// let config = Config::builder()
///     .failure_threshold(3)
///     .recovery_timeout(Duration::from_secs(30))
///     .failure_rate_threshold(0.5)
///     .window_size(20)
///     .build()?;
/// assert_eq!(config.failure_threshold(), 3);
/// assert_eq!(config.minimum_calls(), 10);
/// # Ok::<(), circuit_runtime::ConfigError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Config {
    /// The options that were set, which a layer above (a file) overrides
    /// one by one.
    explicit: Settings,
    /// Every option in force.
    resolved: Resolved,
    pub(crate) clock: Clock,
}

/// What a configuration file says, checked: its defaults, and each
/// breaker's own options over its base chain. Empty without a file.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct FileConfig {
    pub(crate) defaults: Settings,
    pub(crate) breakers: std::collections::BTreeMap<String, Settings>,
}

impl FileConfig {
    /// The configuration of breaker `name`, whose code asked for `code`:
    /// the file's options for the name (its own and its base chain's),
    /// over the code's, over the file's defaults, over the built-in
    /// defaults. Should the code's options contradict the file's (a file's
    /// `minimum_calls` above the code's `window_size`), the file's are
    /// taken without the code's: the file is what an operator can change.
    ///
    /// A key's breaker of a keyed name (`family`) takes its own table's
    /// options over its keyed name's table.
    pub(crate) fn config_for(&self, name: &str, family: Option<&str>, code: &Config) -> Config {
        let family_table = family.and_then(|family| self.breakers.get(family));
        let own = match (self.breakers.get(name), family_table) {
            (Some(own), Some(family)) => Some(own.layered_over(family)),
            (own, family) => own.or(family).cloned(),
        };
        if own.is_none() && self.defaults.is_empty() {
            return code.clone();
        }
        let own = own.unwrap_or_default();
        let own = &own;
        let layered = own.layered_over(&code.explicit.layered_over(&self.defaults));
        Config::from_settings(&layered, code.clock.clone())
            .or_else(|_| {
                Config::from_settings(&own.layered_over(&self.defaults), code.clock.clone())
            })
            .unwrap_or_else(|_| code.clone())
    }
}

/// Which outcomes the sliding window holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WindowKind {
    /// The last `n` outcomes.
    Calls(u32),
    /// The outcomes of the last `duration`.
    Duration(Duration),
}

impl Default for Config {
    /// Trip after 5 consecutive failures, try again after 60 seconds with a
    /// single trial call, no rate rules.
    ///
    /// ```
    /// let config = circuit_runtime::Config::default();
    /// assert_eq!(config.failure_threshold(), 5);
    /// assert_eq!(config.recovery_timeout(), std::time::Duration::from_secs(60));
    /// ```
    fn default() -> Self {
        Self::from_settings(&Settings::new(), Clock::Monotonic)
            .expect("the option table's defaults are valid")
    }
}

/// Two configurations are equal when every option has the same value and
/// they read the same clock; whether a value was set or defaulted does not
/// matter.
impl PartialEq for Config {
    fn eq(&self, other: &Self) -> bool {
        self.resolved == other.resolved && self.clock == other.clock
    }
}

impl Config {
    /// Starts a configuration from the defaults.
    ///
    /// ```
    /// let config = circuit_runtime::Config::builder().failure_threshold(2).build()?;
    /// assert_eq!(config.failure_threshold(), 2);
    /// # Ok::<(), circuit_runtime::ConfigError>(())
    /// ```
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder::default()
    }

    /// Consecutive failures that trip a closed breaker.
    ///
    /// ```
    /// assert_eq!(circuit_runtime::Config::default().failure_threshold(), 5);
    /// ```
    pub fn failure_threshold(&self) -> u32 {
        self.resolved.count(Key::FailureThreshold)
    }

    /// Consecutive trial successes that close a half-open breaker.
    ///
    /// ```
    /// assert_eq!(circuit_runtime::Config::default().success_threshold(), 1);
    /// ```
    pub fn success_threshold(&self) -> u32 {
        self.resolved.count(Key::SuccessThreshold)
    }

    /// Trial calls a half-open breaker lets run at once.
    ///
    /// ```
    /// assert_eq!(circuit_runtime::Config::default().half_open_max_calls(), 1);
    /// ```
    pub fn half_open_max_calls(&self) -> u32 {
        self.resolved.count(Key::HalfOpenMaxCalls)
    }

    /// How long a breaker stays open before its first trial.
    ///
    /// ```
    /// use std::time::Duration;
    /// assert_eq!(circuit_runtime::Config::default().recovery_timeout(), Duration::from_secs(60));
    /// ```
    pub fn recovery_timeout(&self) -> Duration {
        self.duration(Key::RecoveryTimeout)
    }

    /// The failure rate over the window that trips the breaker, if any.
    ///
    /// ```
    /// assert_eq!(circuit_runtime::Config::default().failure_rate_threshold(), None);
    /// ```
    pub fn failure_rate_threshold(&self) -> Option<f64> {
        self.resolved.number(Key::FailureRateThreshold)
    }

    /// The number of outcomes a count window holds, or `None` for a time window.
    ///
    /// ```
    /// assert_eq!(circuit_runtime::Config::default().window_size(), Some(10));
    /// ```
    pub fn window_size(&self) -> Option<u32> {
        self.resolved
            .get(Key::WindowSize)
            .map(|_| self.resolved.count(Key::WindowSize))
    }

    /// The span a time window covers, or `None` for a count window.
    ///
    /// ```
    /// assert_eq!(circuit_runtime::Config::default().window_duration(), None);
    /// ```
    pub fn window_duration(&self) -> Option<Duration> {
        self.resolved.duration(Key::WindowDuration)
    }

    /// Outcomes the window must hold before a rate can trip the breaker.
    ///
    /// ```
    /// assert_eq!(circuit_runtime::Config::default().minimum_calls(), 10);
    /// ```
    pub fn minimum_calls(&self) -> u32 {
        self.resolved.count(Key::MinimumCalls)
    }

    /// Calls taking at least this long count as slow, if set.
    ///
    /// ```
    /// assert_eq!(circuit_runtime::Config::default().slow_call_duration(), None);
    /// ```
    pub fn slow_call_duration(&self) -> Option<Duration> {
        self.resolved.duration(Key::SlowCallDuration)
    }

    /// The share of slow calls over the window that trips the breaker, if any.
    ///
    /// ```
    /// assert_eq!(circuit_runtime::Config::default().slow_call_rate_threshold(), None);
    /// ```
    pub fn slow_call_rate_threshold(&self) -> Option<f64> {
        self.resolved.number(Key::SlowCallRateThreshold)
    }

    /// What each reopen from half-open multiplies the open time by.
    ///
    /// ```
    /// assert_eq!(circuit_runtime::Config::default().recovery_backoff(), 1.0);
    /// ```
    pub fn recovery_backoff(&self) -> f64 {
        self.number(Key::RecoveryBackoff)
    }

    /// The longest open time backoff can reach.
    ///
    /// ```
    /// use std::time::Duration;
    /// assert_eq!(circuit_runtime::Config::default().max_recovery_timeout(), Duration::from_secs(600));
    /// ```
    pub fn max_recovery_timeout(&self) -> Duration {
        self.duration(Key::MaxRecoveryTimeout)
    }

    /// The share of the open time by which it is randomly spread.
    ///
    /// ```
    /// assert_eq!(circuit_runtime::Config::default().jitter(), 0.0);
    /// ```
    pub fn jitter(&self) -> f64 {
        self.number(Key::Jitter)
    }

    /// How long a half-open period may go without a verdict before it reopens.
    ///
    /// ```
    /// use std::time::Duration;
    /// assert_eq!(circuit_runtime::Config::default().half_open_timeout(), Duration::from_secs(60));
    /// ```
    pub fn half_open_timeout(&self) -> Duration {
        self.duration(Key::HalfOpenTimeout)
    }

    /// Calls of the breaker that may run at once, or `None` for no limit
    /// (the default). A call beyond it is rejected at once, not queued:
    /// see [`CircuitOpenError::is_concurrency_limit`](crate::CircuitOpenError::is_concurrency_limit).
    ///
    /// ```
    /// use circuit_runtime::Config;
    /// assert_eq!(Config::default().max_concurrent_calls(), None);
    /// assert_eq!(Config::builder().max_concurrent_calls(8).build()?.max_concurrent_calls(), Some(8));
    /// # Ok::<(), circuit_runtime::ConfigError>(())
    /// ```
    pub fn max_concurrent_calls(&self) -> Option<u32> {
        self.resolved
            .get(Key::MaxConcurrentCalls)
            .map(|_| self.resolved.count(Key::MaxConcurrentCalls))
    }

    /// The manual clock this breaker reads, or `None` for the monotonic clock.
    ///
    /// ```
    /// use circuit_runtime::{Config, ManualClock};
    /// let clock = ManualClock::new();
    /// let config = Config::builder().clock(clock.clone()).build()?;
    /// assert_eq!(config.manual_clock(), Some(&clock));
    /// # Ok::<(), circuit_runtime::ConfigError>(())
    /// ```
    pub fn manual_clock(&self) -> Option<&ManualClock> {
        match &self.clock {
            Clock::Monotonic => None,
            Clock::Manual(clock) => Some(clock),
        }
    }

    pub(crate) fn window(&self) -> WindowKind {
        match self.window_duration() {
            Some(duration) => WindowKind::Duration(duration),
            None => WindowKind::Calls(self.resolved.count(Key::WindowSize)),
        }
    }

    /// Whether outcomes must be kept in a window at all: only rate rules
    /// read it, so without them the hot path skips it entirely.
    pub(crate) fn keeps_window(&self) -> bool {
        self.failure_rate_threshold().is_some() || self.slow_call_rate_threshold().is_some()
    }

    /// The options whose values differ from `other`'s, by name, in the
    /// option table's order. Clocks are not options: two configurations
    /// that differ only in their clock have no differences.
    ///
    /// ```
    /// use circuit_runtime::{Config, ManualClock};
    /// let strict = Config::builder().failure_threshold(1).jitter(0.1).build()?;
    /// assert_eq!(Config::default().differences(&strict), ["failure_threshold", "jitter"]);
    ///
    /// let tested = Config::builder().clock(ManualClock::new()).build()?;
    /// assert!(Config::default().differences(&tested).is_empty());
    /// # Ok::<(), circuit_runtime::ConfigError>(())
    /// ```
    pub fn differences(&self, other: &Config) -> Vec<&'static str> {
        self.resolved
            .differences(&other.resolved)
            .into_iter()
            .map(Key::name)
            .collect()
    }

    /// This configuration on `other`'s clock.
    pub(crate) fn with_clock_of(mut self, other: &Config) -> Config {
        self.clock = other.clock.clone();
        self
    }

    /// The configuration `explicit` describes, on `clock`: the first of its
    /// problems if it has any.
    pub(crate) fn from_settings(explicit: &Settings, clock: Clock) -> Result<Config, ConfigError> {
        let resolved = explicit
            .resolve()
            .map_err(|problems| ConfigError::from(problems[0].clone()))?;
        Ok(Config {
            explicit: explicit.clone(),
            resolved,
            clock,
        })
    }

    /// Options that always have a value.
    fn duration(&self, key: Key) -> Duration {
        self.resolved.duration(key).unwrap_or_default()
    }

    fn number(&self, key: Key) -> f64 {
        self.resolved.number(key).unwrap_or_default()
    }
}

/// Builds a [`Config`], one method per option; [`build`](ConfigBuilder::build)
/// checks every value.
///
/// ```
/// use std::time::Duration;
/// use circuit_runtime::{Config, ConfigError};
///
/// let err = Config::builder().failure_rate_threshold(1.5).build().unwrap_err();
/// assert_eq!(err.to_string(), "`failure_rate_threshold` must be greater than 0 and at most 1, got 1.5");
///
/// let err = Config::builder()
///     .window_size(20)
///     .window_duration(Duration::from_secs(10))
///     .build()
///     .unwrap_err();
/// assert!(matches!(err, ConfigError::ConflictingWindows));
/// ```
#[derive(Clone, Debug, Default)]
#[must_use = "a builder does nothing until `.build()` is called"]
pub struct ConfigBuilder {
    settings: Settings,
    clock: Clock,
}

macro_rules! setters {
    ($($(#[$doc:meta])* $option:ident: $ty:ty => $key:expr;)*) => {
        $(
            $(#[$doc])*
            pub fn $option(mut self, $option: $ty) -> Self {
                self.settings.set($key, IntoValue::into_value($option));
                self
            }
        )*
    };
}

/// A builder argument as an option table value.
trait IntoValue {
    fn into_value(self) -> Value;
}

impl IntoValue for u32 {
    fn into_value(self) -> Value {
        Value::Count(self.into())
    }
}

impl IntoValue for f64 {
    fn into_value(self) -> Value {
        Value::Number(self)
    }
}

impl IntoValue for Duration {
    fn into_value(self) -> Value {
        Value::Duration(self)
    }
}

impl ConfigBuilder {
    setters! {
        /// Consecutive failures that trip a closed breaker; at least 1. Default 5.
        ///
        /// ```
        /// let config = circuit_runtime::Config::builder().failure_threshold(3).build()?;
        /// # Ok::<(), circuit_runtime::ConfigError>(())
        /// ```
        failure_threshold: u32 => Key::FailureThreshold;
        /// Consecutive trial successes that close a half-open breaker;
        /// 1 to 65535. Default 1.
        ///
        /// ```
        /// let config = circuit_runtime::Config::builder().success_threshold(3).build()?;
        /// # Ok::<(), circuit_runtime::ConfigError>(())
        /// ```
        success_threshold: u32 => Key::SuccessThreshold;
        /// Trial calls a half-open breaker lets run at once; 1 to 65535. Default 1.
        ///
        /// ```
        /// let config = circuit_runtime::Config::builder().half_open_max_calls(2).build()?;
        /// # Ok::<(), circuit_runtime::ConfigError>(())
        /// ```
        half_open_max_calls: u32 => Key::HalfOpenMaxCalls;
        /// How long the breaker stays open before a trial; above zero. Default 60 s.
        ///
        /// ```
        /// use std::time::Duration;
        /// let config = circuit_runtime::Config::builder().recovery_timeout(Duration::from_secs(5)).build()?;
        /// # Ok::<(), circuit_runtime::ConfigError>(())
        /// ```
        recovery_timeout: std::time::Duration => Key::RecoveryTimeout;
        /// Trip when the share of failures in the window reaches this rate;
        /// greater than 0 and at most 1. Default: no rate rule.
        ///
        /// ```
        /// let config = circuit_runtime::Config::builder().failure_rate_threshold(0.5).build()?;
        /// # Ok::<(), circuit_runtime::ConfigError>(())
        /// ```
        failure_rate_threshold: f64 => Key::FailureRateThreshold;
        /// Judge rates over the last `window_size` outcomes; 1 to 1,000,000.
        /// Default 10. Cannot be combined with `window_duration`.
        ///
        /// ```
        /// let config = circuit_runtime::Config::builder().window_size(100).build()?;
        /// # Ok::<(), circuit_runtime::ConfigError>(())
        /// ```
        window_size: u32 => Key::WindowSize;
        /// Judge rates over the outcomes of the last `window_duration` instead
        /// of a count; above zero. The window moves in steps of a tenth of
        /// its length.
        ///
        /// ```
        /// use std::time::Duration;
        /// let config = circuit_runtime::Config::builder().window_duration(Duration::from_secs(10)).build()?;
        /// # Ok::<(), circuit_runtime::ConfigError>(())
        /// ```
        window_duration: std::time::Duration => Key::WindowDuration;
        /// Outcomes the window must hold before a rate can trip the breaker;
        /// at least 1 and at most `window_size`. Default 10, or `window_size`
        /// when that is smaller.
        ///
        /// ```
        /// let config = circuit_runtime::Config::builder().minimum_calls(5).build()?;
        /// # Ok::<(), circuit_runtime::ConfigError>(())
        /// ```
        minimum_calls: u32 => Key::MinimumCalls;
        /// Calls that take at least this long count as slow; above zero.
        /// Default: no call is slow.
        ///
        /// ```
        /// use std::time::Duration;
        /// let config = circuit_runtime::Config::builder().slow_call_duration(Duration::from_millis(500)).build()?;
        /// # Ok::<(), circuit_runtime::ConfigError>(())
        /// ```
        slow_call_duration: std::time::Duration => Key::SlowCallDuration;
        /// Trip when the share of slow calls in the window reaches this rate;
        /// greater than 0 and at most 1; needs `slow_call_duration`.
        ///
        /// ```
        /// use std::time::Duration;
        /// let config = circuit_runtime::Config::builder()
        ///     .slow_call_duration(Duration::from_secs(2))
        ///     .slow_call_rate_threshold(0.8)
        ///     .build()?;
        /// # Ok::<(), circuit_runtime::ConfigError>(())
        /// ```
        slow_call_rate_threshold: f64 => Key::SlowCallRateThreshold;
        /// Each reopen from half-open multiplies the open time by this; at
        /// least 1.0. Default 1.0 (no backoff).
        ///
        /// ```
        /// let config = circuit_runtime::Config::builder().recovery_backoff(2.0).build()?;
        /// # Ok::<(), circuit_runtime::ConfigError>(())
        /// ```
        recovery_backoff: f64 => Key::RecoveryBackoff;
        /// The cap on the backed-off open time; at least `recovery_timeout`.
        /// Default 10 minutes, or `recovery_timeout` when that is longer.
        ///
        /// ```
        /// use std::time::Duration;
        /// let config = circuit_runtime::Config::builder().max_recovery_timeout(Duration::from_secs(300)).build()?;
        /// # Ok::<(), circuit_runtime::ConfigError>(())
        /// ```
        max_recovery_timeout: std::time::Duration => Key::MaxRecoveryTimeout;
        /// Spread each open time randomly by up to this share of itself, so
        /// many clients do not retry in lockstep; 0 to 1. Default 0.
        ///
        /// ```
        /// let config = circuit_runtime::Config::builder().jitter(0.1).build()?;
        /// # Ok::<(), circuit_runtime::ConfigError>(())
        /// ```
        jitter: f64 => Key::Jitter;
        /// A half-open period with no verdict after this long reopens the
        /// breaker, so a hung trial cannot keep it half-open; above zero.
        /// Default 60 s.
        ///
        /// ```
        /// use std::time::Duration;
        /// let config = circuit_runtime::Config::builder().half_open_timeout(Duration::from_secs(10)).build()?;
        /// # Ok::<(), circuit_runtime::ConfigError>(())
        /// ```
        half_open_timeout: std::time::Duration => Key::HalfOpenTimeout;
        /// Calls that may run at once; at least 1. Default: no limit. A
        /// call beyond the limit is rejected at once, not queued, with a
        /// [`CircuitOpenError`](crate::CircuitOpenError) whose
        /// [`is_concurrency_limit`](crate::CircuitOpenError::is_concurrency_limit)
        /// is `true`: a bulkhead, so one slow dependency cannot hold every
        /// thread or task of the program.
        ///
        /// ```
        /// let config = circuit_runtime::Config::builder().max_concurrent_calls(16).build()?;
        /// # Ok::<(), circuit_runtime::ConfigError>(())
        /// ```
        max_concurrent_calls: u32 => Key::MaxConcurrentCalls;
    }

    /// Read time from `clock` instead of the monotonic system clock.
    ///
    /// ```
    /// let config = circuit_runtime::Config::builder()
    ///     .clock(circuit_runtime::ManualClock::new())
    ///     .build()?;
    /// # Ok::<(), circuit_runtime::ConfigError>(())
    /// ```
    pub fn clock(mut self, clock: ManualClock) -> Self {
        self.clock = Clock::Manual(clock);
        self
    }

    /// Checks every option against the option table and returns the
    /// configuration, or the first mistake with its allowed range.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the option when a value is out of range or
    /// two options contradict each other.
    ///
    /// ```
    /// let err = circuit_runtime::Config::builder().failure_threshold(0).build().unwrap_err();
    /// assert_eq!(err.to_string(), "`failure_threshold` must be at least 1, got 0");
    /// ```
    pub fn build(self) -> Result<Config, ConfigError> {
        Config::from_settings(&self.settings, self.clock)
    }
}

impl From<Problem> for ConfigError {
    fn from(problem: Problem) -> Self {
        match problem {
            Problem::OutOfRange { key, value } => ConfigError::OutOfRange {
                option: key.name(),
                expected: key.spec().range.expected(value),
                value: value.to_string(),
            },
            Problem::ConflictingWindows => ConfigError::ConflictingWindows,
            Problem::MinimumCallsExceedWindow {
                minimum_calls,
                window_size,
                ..
            } => ConfigError::MinimumCallsExceedWindow {
                minimum_calls: u32::try_from(minimum_calls).unwrap_or(u32::MAX),
                window_size: u32::try_from(window_size).unwrap_or(u32::MAX),
            },
            Problem::MaxRecoveryTimeoutTooShort {
                max_recovery_timeout,
                recovery_timeout,
                ..
            } => ConfigError::MaxRecoveryTimeoutTooShort {
                max_recovery_timeout,
                recovery_timeout,
            },
            Problem::SlowCallRateWithoutDuration => ConfigError::SlowCallRateWithoutDuration,
            // Typed builder methods cannot hand over a value of the wrong
            // kind or an unparsed duration; readers that can (a file)
            // report these themselves.
            Problem::WrongKind { .. } | Problem::BadDuration { .. } => {
                unreachable!("a typed option cannot be {problem:?}")
            }
        }
    }
}
