//! How a breaker decides: thresholds, windows, timeouts. Built once through
//! [`ConfigBuilder`], validated, then read-only.

use std::time::Duration;

use crate::clock::{Clock, ManualClock};
use crate::error::ConfigError;

/// The largest `success_threshold` and `half_open_max_calls`: both are
/// packed into 16-bit fields of one atomic word so a trial is admitted with a
/// single compare-and-swap.
pub const MAX_TRIAL_CALLS: u32 = u16::MAX as u32;

/// The largest `window_size`: each outcome in a count window is one 8-byte
/// atomic word, so the largest window takes 8 MB.
pub const MAX_WINDOW_SIZE: u32 = 1_000_000;

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
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    failure_threshold: u32,
    success_threshold: u32,
    half_open_max_calls: u32,
    recovery_timeout: Duration,
    failure_rate_threshold: Option<f64>,
    window: WindowKind,
    minimum_calls: u32,
    slow_call_duration: Option<Duration>,
    slow_call_rate_threshold: Option<f64>,
    recovery_backoff: f64,
    max_recovery_timeout: Duration,
    jitter: f64,
    half_open_timeout: Duration,
    pub(crate) clock: Clock,
}

/// Which outcomes the sliding window holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WindowKind {
    /// The last `n` outcomes.
    Calls(u32),
    /// The outcomes of the last `duration`.
    Duration(Duration),
}

const DEFAULT_FAILURE_THRESHOLD: u32 = 5;
const DEFAULT_WINDOW_SIZE: u32 = 10;
const DEFAULT_MINIMUM_CALLS: u32 = 10;
const DEFAULT_RECOVERY_TIMEOUT: Duration = Duration::from_secs(60);
const DEFAULT_MAX_RECOVERY_TIMEOUT: Duration = Duration::from_secs(10 * 60);
const DEFAULT_HALF_OPEN_TIMEOUT: Duration = Duration::from_secs(60);

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
        Self {
            failure_threshold: DEFAULT_FAILURE_THRESHOLD,
            success_threshold: 1,
            half_open_max_calls: 1,
            recovery_timeout: DEFAULT_RECOVERY_TIMEOUT,
            failure_rate_threshold: None,
            window: WindowKind::Calls(DEFAULT_WINDOW_SIZE),
            minimum_calls: DEFAULT_MINIMUM_CALLS,
            slow_call_duration: None,
            slow_call_rate_threshold: None,
            recovery_backoff: 1.0,
            max_recovery_timeout: DEFAULT_MAX_RECOVERY_TIMEOUT,
            jitter: 0.0,
            half_open_timeout: DEFAULT_HALF_OPEN_TIMEOUT,
            clock: Clock::Monotonic,
        }
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
        self.failure_threshold
    }

    /// Consecutive trial successes that close a half-open breaker.
    ///
    /// ```
    /// assert_eq!(circuit_runtime::Config::default().success_threshold(), 1);
    /// ```
    pub fn success_threshold(&self) -> u32 {
        self.success_threshold
    }

    /// Trial calls a half-open breaker lets run at once.
    ///
    /// ```
    /// assert_eq!(circuit_runtime::Config::default().half_open_max_calls(), 1);
    /// ```
    pub fn half_open_max_calls(&self) -> u32 {
        self.half_open_max_calls
    }

    /// How long a breaker stays open before its first trial.
    ///
    /// ```
    /// use std::time::Duration;
    /// assert_eq!(circuit_runtime::Config::default().recovery_timeout(), Duration::from_secs(60));
    /// ```
    pub fn recovery_timeout(&self) -> Duration {
        self.recovery_timeout
    }

    /// The failure rate over the window that trips the breaker, if any.
    ///
    /// ```
    /// assert_eq!(circuit_runtime::Config::default().failure_rate_threshold(), None);
    /// ```
    pub fn failure_rate_threshold(&self) -> Option<f64> {
        self.failure_rate_threshold
    }

    /// The number of outcomes a count window holds, or `None` for a time window.
    ///
    /// ```
    /// assert_eq!(circuit_runtime::Config::default().window_size(), Some(10));
    /// ```
    pub fn window_size(&self) -> Option<u32> {
        match self.window {
            WindowKind::Calls(size) => Some(size),
            WindowKind::Duration(_) => None,
        }
    }

    /// The span a time window covers, or `None` for a count window.
    ///
    /// ```
    /// assert_eq!(circuit_runtime::Config::default().window_duration(), None);
    /// ```
    pub fn window_duration(&self) -> Option<Duration> {
        match self.window {
            WindowKind::Calls(_) => None,
            WindowKind::Duration(duration) => Some(duration),
        }
    }

    /// Outcomes the window must hold before a rate can trip the breaker.
    ///
    /// ```
    /// assert_eq!(circuit_runtime::Config::default().minimum_calls(), 10);
    /// ```
    pub fn minimum_calls(&self) -> u32 {
        self.minimum_calls
    }

    /// Calls taking at least this long count as slow, if set.
    ///
    /// ```
    /// assert_eq!(circuit_runtime::Config::default().slow_call_duration(), None);
    /// ```
    pub fn slow_call_duration(&self) -> Option<Duration> {
        self.slow_call_duration
    }

    /// The share of slow calls over the window that trips the breaker, if any.
    ///
    /// ```
    /// assert_eq!(circuit_runtime::Config::default().slow_call_rate_threshold(), None);
    /// ```
    pub fn slow_call_rate_threshold(&self) -> Option<f64> {
        self.slow_call_rate_threshold
    }

    /// What each reopen from half-open multiplies the open time by.
    ///
    /// ```
    /// assert_eq!(circuit_runtime::Config::default().recovery_backoff(), 1.0);
    /// ```
    pub fn recovery_backoff(&self) -> f64 {
        self.recovery_backoff
    }

    /// The longest open time backoff can reach.
    ///
    /// ```
    /// use std::time::Duration;
    /// assert_eq!(circuit_runtime::Config::default().max_recovery_timeout(), Duration::from_secs(600));
    /// ```
    pub fn max_recovery_timeout(&self) -> Duration {
        self.max_recovery_timeout
    }

    /// The share of the open time by which it is randomly spread.
    ///
    /// ```
    /// assert_eq!(circuit_runtime::Config::default().jitter(), 0.0);
    /// ```
    pub fn jitter(&self) -> f64 {
        self.jitter
    }

    /// How long a half-open period may go without a verdict before it reopens.
    ///
    /// ```
    /// use std::time::Duration;
    /// assert_eq!(circuit_runtime::Config::default().half_open_timeout(), Duration::from_secs(60));
    /// ```
    pub fn half_open_timeout(&self) -> Duration {
        self.half_open_timeout
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
        self.window
    }

    /// Whether outcomes must be kept in a window at all: only rate rules
    /// read it, so without them the hot path skips it entirely.
    pub(crate) fn keeps_window(&self) -> bool {
        self.failure_rate_threshold.is_some() || self.slow_call_rate_threshold.is_some()
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
    config: Config,
    window_size: Option<u32>,
    window_duration: Option<Duration>,
    minimum_calls: Option<u32>,
    max_recovery_timeout: Option<Duration>,
}

macro_rules! setters {
    ($($(#[$doc:meta])* $option:ident: $ty:ty => $store:expr;)*) => {
        $(
            $(#[$doc])*
            pub fn $option(mut self, $option: $ty) -> Self {
                #[allow(clippy::redundant_closure_call)]
                ($store)(&mut self, $option);
                self
            }
        )*
    };
}

impl ConfigBuilder {
    setters! {
        /// Consecutive failures that trip a closed breaker; at least 1. Default 5.
        ///
        /// ```
        /// let config = circuit_runtime::Config::builder().failure_threshold(3).build()?;
        /// # Ok::<(), circuit_runtime::ConfigError>(())
        /// ```
        failure_threshold: u32 => |b: &mut Self, v| b.config.failure_threshold = v;
        /// Consecutive trial successes that close a half-open breaker;
        /// 1 to 65535. Default 1.
        ///
        /// ```
        /// let config = circuit_runtime::Config::builder().success_threshold(3).build()?;
        /// # Ok::<(), circuit_runtime::ConfigError>(())
        /// ```
        success_threshold: u32 => |b: &mut Self, v| b.config.success_threshold = v;
        /// Trial calls a half-open breaker lets run at once; 1 to 65535. Default 1.
        ///
        /// ```
        /// let config = circuit_runtime::Config::builder().half_open_max_calls(2).build()?;
        /// # Ok::<(), circuit_runtime::ConfigError>(())
        /// ```
        half_open_max_calls: u32 => |b: &mut Self, v| b.config.half_open_max_calls = v;
        /// How long the breaker stays open before a trial; above zero. Default 60 s.
        ///
        /// ```
        /// use std::time::Duration;
        /// let config = circuit_runtime::Config::builder().recovery_timeout(Duration::from_secs(5)).build()?;
        /// # Ok::<(), circuit_runtime::ConfigError>(())
        /// ```
        recovery_timeout: std::time::Duration => |b: &mut Self, v| b.config.recovery_timeout = v;
        /// Trip when the share of failures in the window reaches this rate;
        /// greater than 0 and at most 1. Default: no rate rule.
        ///
        /// ```
        /// let config = circuit_runtime::Config::builder().failure_rate_threshold(0.5).build()?;
        /// # Ok::<(), circuit_runtime::ConfigError>(())
        /// ```
        failure_rate_threshold: f64 => |b: &mut Self, v| b.config.failure_rate_threshold = Some(v);
        /// Judge rates over the last `window_size` outcomes; 1 to 1,000,000.
        /// Default 10. Cannot be combined with `window_duration`.
        ///
        /// ```
        /// let config = circuit_runtime::Config::builder().window_size(100).build()?;
        /// # Ok::<(), circuit_runtime::ConfigError>(())
        /// ```
        window_size: u32 => |b: &mut Self, v| b.window_size = Some(v);
        /// Judge rates over the outcomes of the last `window_duration` instead
        /// of a count; above zero. The window moves in steps of a tenth of
        /// its length.
        ///
        /// ```
        /// use std::time::Duration;
        /// let config = circuit_runtime::Config::builder().window_duration(Duration::from_secs(10)).build()?;
        /// # Ok::<(), circuit_runtime::ConfigError>(())
        /// ```
        window_duration: std::time::Duration => |b: &mut Self, v| b.window_duration = Some(v);
        /// Outcomes the window must hold before a rate can trip the breaker;
        /// at least 1 and at most `window_size`. Default 10, or `window_size`
        /// when that is smaller.
        ///
        /// ```
        /// let config = circuit_runtime::Config::builder().minimum_calls(5).build()?;
        /// # Ok::<(), circuit_runtime::ConfigError>(())
        /// ```
        minimum_calls: u32 => |b: &mut Self, v| b.minimum_calls = Some(v);
        /// Calls that take at least this long count as slow; above zero.
        /// Default: no call is slow.
        ///
        /// ```
        /// use std::time::Duration;
        /// let config = circuit_runtime::Config::builder().slow_call_duration(Duration::from_millis(500)).build()?;
        /// # Ok::<(), circuit_runtime::ConfigError>(())
        /// ```
        slow_call_duration: std::time::Duration => |b: &mut Self, v| b.config.slow_call_duration = Some(v);
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
        slow_call_rate_threshold: f64 => |b: &mut Self, v| b.config.slow_call_rate_threshold = Some(v);
        /// Each reopen from half-open multiplies the open time by this; at
        /// least 1.0. Default 1.0 (no backoff).
        ///
        /// ```
        /// let config = circuit_runtime::Config::builder().recovery_backoff(2.0).build()?;
        /// # Ok::<(), circuit_runtime::ConfigError>(())
        /// ```
        recovery_backoff: f64 => |b: &mut Self, v| b.config.recovery_backoff = v;
        /// The cap on the backed-off open time; at least `recovery_timeout`.
        /// Default 10 minutes, or `recovery_timeout` when that is longer.
        ///
        /// ```
        /// use std::time::Duration;
        /// let config = circuit_runtime::Config::builder().max_recovery_timeout(Duration::from_secs(300)).build()?;
        /// # Ok::<(), circuit_runtime::ConfigError>(())
        /// ```
        max_recovery_timeout: std::time::Duration => |b: &mut Self, v| b.max_recovery_timeout = Some(v);
        /// Spread each open time randomly by up to this share of itself, so
        /// many clients do not retry in lockstep; 0 to 1. Default 0.
        ///
        /// ```
        /// let config = circuit_runtime::Config::builder().jitter(0.1).build()?;
        /// # Ok::<(), circuit_runtime::ConfigError>(())
        /// ```
        jitter: f64 => |b: &mut Self, v| b.config.jitter = v;
        /// A half-open period with no verdict after this long reopens the
        /// breaker, so a hung trial cannot keep it half-open; above zero.
        /// Default 60 s.
        ///
        /// ```
        /// use std::time::Duration;
        /// let config = circuit_runtime::Config::builder().half_open_timeout(Duration::from_secs(10)).build()?;
        /// # Ok::<(), circuit_runtime::ConfigError>(())
        /// ```
        half_open_timeout: std::time::Duration => |b: &mut Self, v| b.config.half_open_timeout = v;
        /// Read time from `clock` instead of the monotonic system clock.
        ///
        /// ```
        /// let config = circuit_runtime::Config::builder()
        ///     .clock(circuit_runtime::ManualClock::new())
        ///     .build()?;
        /// # Ok::<(), circuit_runtime::ConfigError>(())
        /// ```
        clock: ManualClock => |b: &mut Self, v| b.config.clock = Clock::Manual(v);
    }

    /// Checks every option and returns the configuration, or the first
    /// invalid option with its allowed range.
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
        let mut config = self.config;
        config.window = match (self.window_size, self.window_duration) {
            (Some(_), Some(_)) => return Err(ConfigError::ConflictingWindows),
            (Some(size), None) => {
                check_count(
                    "window_size",
                    size,
                    MAX_WINDOW_SIZE,
                    "between 1 and 1000000",
                )?;
                WindowKind::Calls(size)
            }
            (None, Some(duration)) => {
                check_positive("window_duration", duration)?;
                WindowKind::Duration(duration)
            }
            (None, None) => WindowKind::Calls(DEFAULT_WINDOW_SIZE),
        };
        config.minimum_calls = match (self.minimum_calls, config.window) {
            (Some(minimum), _) => minimum,
            (None, WindowKind::Calls(size)) => DEFAULT_MINIMUM_CALLS.min(size),
            (None, WindowKind::Duration(_)) => DEFAULT_MINIMUM_CALLS,
        };
        config.max_recovery_timeout = self
            .max_recovery_timeout
            .unwrap_or(DEFAULT_MAX_RECOVERY_TIMEOUT.max(config.recovery_timeout));

        check_count(
            "failure_threshold",
            config.failure_threshold,
            u32::MAX,
            "at least 1",
        )?;
        check_count(
            "success_threshold",
            config.success_threshold,
            MAX_TRIAL_CALLS,
            "between 1 and 65535",
        )?;
        check_count(
            "half_open_max_calls",
            config.half_open_max_calls,
            MAX_TRIAL_CALLS,
            "between 1 and 65535",
        )?;
        check_count(
            "minimum_calls",
            config.minimum_calls,
            u32::MAX,
            "at least 1",
        )?;
        if let WindowKind::Calls(window_size) = config.window {
            if config.minimum_calls > window_size {
                return Err(ConfigError::MinimumCallsExceedWindow {
                    minimum_calls: config.minimum_calls,
                    window_size,
                });
            }
        }
        check_positive("recovery_timeout", config.recovery_timeout)?;
        check_positive("half_open_timeout", config.half_open_timeout)?;
        if let Some(slow) = config.slow_call_duration {
            check_positive("slow_call_duration", slow)?;
        }
        if config.max_recovery_timeout < config.recovery_timeout {
            return Err(ConfigError::MaxRecoveryTimeoutTooShort {
                max_recovery_timeout: config.max_recovery_timeout,
                recovery_timeout: config.recovery_timeout,
            });
        }
        if let Some(rate) = config.failure_rate_threshold {
            check_rate("failure_rate_threshold", rate)?;
        }
        if let Some(rate) = config.slow_call_rate_threshold {
            check_rate("slow_call_rate_threshold", rate)?;
            if config.slow_call_duration.is_none() {
                return Err(ConfigError::SlowCallRateWithoutDuration);
            }
        }
        if !(config.recovery_backoff >= 1.0 && config.recovery_backoff.is_finite()) {
            return Err(out_of_range(
                "recovery_backoff",
                "at least 1.0",
                config.recovery_backoff,
            ));
        }
        if !(0.0..=1.0).contains(&config.jitter) {
            return Err(out_of_range("jitter", "between 0 and 1", config.jitter));
        }
        Ok(config)
    }
}

fn out_of_range(
    option: &'static str,
    expected: &'static str,
    value: impl std::fmt::Display,
) -> ConfigError {
    ConfigError::OutOfRange {
        option,
        expected,
        value: value.to_string(),
    }
}

/// Every count option starts at 1; `expected` spells out the whole range.
fn check_count(
    option: &'static str,
    value: u32,
    max: u32,
    expected: &'static str,
) -> Result<(), ConfigError> {
    if (1..=max).contains(&value) {
        Ok(())
    } else {
        Err(out_of_range(option, expected, value))
    }
}

fn check_positive(option: &'static str, value: Duration) -> Result<(), ConfigError> {
    if value.is_zero() {
        Err(out_of_range(option, "greater than zero", "0s"))
    } else {
        Ok(())
    }
}

fn check_rate(option: &'static str, rate: f64) -> Result<(), ConfigError> {
    if rate > 0.0 && rate <= 1.0 {
        Ok(())
    } else {
        Err(out_of_range(option, "greater than 0 and at most 1", rate))
    }
}
