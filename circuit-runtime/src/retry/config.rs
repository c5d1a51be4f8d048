//! How many times to retry, and how long to wait before each retry.

use std::sync::Arc;
use std::time::Duration;

use super::budget::RetryBudget;
use crate::clock::Clock;
use crate::policy::{saturating_mul, SplitMix};
use crate::{ConfigError, ManualClock};

/// How a retry's delay is spread, so that clients that failed together do
/// not retry together. Every mode stays at or below `max_delay`.
///
/// With `delay` the exponential delay of a retry:
///
/// | mode | waits |
/// |---|---|
/// | `None` | `delay` |
/// | `Full` | anything from 0 to `delay` |
/// | `Equal` | anything from `delay / 2` to `delay` |
/// | `Decorrelated` | anything from `base_delay` to three times the previous wait, at most `max_delay` |
///
/// `true` and `false` convert to `Full` and `None`.
///
/// ```
/// use circuit_runtime::retry::Jitter;
/// assert_eq!(Jitter::from(true), Jitter::Full);
/// assert_eq!("decorrelated".parse::<Jitter>(), Ok(Jitter::Decorrelated));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Jitter {
    /// The exponential delay as it is.
    None,
    /// Uniform between zero and the delay.
    #[default]
    Full,
    /// Half the delay, plus uniform up to the other half.
    Equal,
    /// Uniform between `base_delay` and three times the previous wait.
    Decorrelated,
}

impl Jitter {
    /// The mode's name, as options write it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Jitter::None => "none",
            Jitter::Full => "full",
            Jitter::Equal => "equal",
            Jitter::Decorrelated => "decorrelated",
        }
    }
}

impl From<bool> for Jitter {
    fn from(on: bool) -> Jitter {
        if on {
            Jitter::Full
        } else {
            Jitter::None
        }
    }
}

impl std::str::FromStr for Jitter {
    type Err = String;

    fn from_str(text: &str) -> Result<Jitter, String> {
        Ok(match circuit_spec::retry::jitter(text)? {
            "none" => Jitter::None,
            "equal" => Jitter::Equal,
            "decorrelated" => Jitter::Decorrelated,
            _ => Jitter::Full,
        })
    }
}

/// How a retried call is retried: how many times, after which delays,
/// within how much time, and under which budget.
///
/// ```
/// use std::time::Duration;
/// use circuit_runtime::retry::{Jitter, RetryConfig};
///
/// let config = RetryConfig::builder()
///     .max_retries(4)
///     .base_delay(Duration::from_millis(100))
///     .max_delay(Duration::from_secs(2))
///     .jitter(Jitter::None)
///     .build()?;
/// let delays: Vec<Duration> = config.delays().collect();
/// assert_eq!(delays, [100, 200, 400, 800].map(Duration::from_millis));
/// # Ok::<(), circuit_runtime::ConfigError>(())
/// ```
#[derive(Clone, Debug)]
pub struct RetryConfig<L = NoAttemptTimeout> {
    pub(super) max_retries: u32,
    pub(super) base_delay: Duration,
    pub(super) max_delay: Duration,
    pub(super) exponential_base: f64,
    pub(super) jitter: Jitter,
    pub(super) max_elapsed: Option<Duration>,
    pub(super) budget: Option<Arc<RetryBudget>>,
    pub(super) clock: Clock,
    /// The time limit of each attempt: [`NoAttemptTimeout`] or
    /// [`AttemptTimeout`], so a limit the error type cannot report, or a
    /// blocking [`retry`](super::retry) that could not enforce it, does not
    /// compile.
    pub(super) attempt_timeout: L,
}

/// No time limit on an attempt: the default, and the only one the
/// blocking [`retry`](super::retry) takes (a blocking call cannot be cut
/// off).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NoAttemptTimeout;

/// Each attempt of an async retry is cut off after this long: see
/// [`RetryConfigBuilder::attempt_timeout`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttemptTimeout(pub(super) Duration);

impl AttemptTimeout {
    /// The time limit of each attempt.
    pub fn limit(self) -> Duration {
        self.0
    }
}

impl Default for RetryConfig {
    /// 3 retries, 1 s doubling up to 60 s, full jitter, no time limit, no
    /// budget.
    fn default() -> Self {
        RetryConfig {
            max_retries: 3,
            base_delay: circuit_spec::retry::DEFAULT_BASE_DELAY,
            max_delay: circuit_spec::retry::DEFAULT_MAX_DELAY,
            exponential_base: 2.0,
            jitter: Jitter::Full,
            max_elapsed: None,
            budget: None,
            clock: Clock::Monotonic,
            attempt_timeout: NoAttemptTimeout,
        }
    }
}

impl RetryConfig {
    /// A builder starting from the defaults.
    pub fn builder() -> RetryConfigBuilder {
        RetryConfigBuilder {
            config: RetryConfig::default(),
        }
    }
}

impl RetryConfig<AttemptTimeout> {
    /// The time limit of each attempt.
    pub fn attempt_timeout(&self) -> Duration {
        self.attempt_timeout.0
    }
}

impl<L> RetryConfig<L> {
    /// Retries after the first attempt, at most.
    pub fn max_retries(&self) -> u32 {
        self.max_retries
    }

    /// The delay before the first retry, before jitter.
    pub fn base_delay(&self) -> Duration {
        self.base_delay
    }

    /// The longest delay, jitter and `retry_after` hints included.
    pub fn max_delay(&self) -> Duration {
        self.max_delay
    }

    /// What each delay is multiplied by.
    pub fn exponential_base(&self) -> f64 {
        self.exponential_base
    }

    /// How delays are spread.
    pub fn jitter(&self) -> Jitter {
        self.jitter
    }

    /// The most time attempts and delays may take together.
    pub fn max_elapsed(&self) -> Option<Duration> {
        self.max_elapsed
    }

    /// The budget retries draw from.
    pub fn budget(&self) -> Option<&Arc<RetryBudget>> {
        self.budget.as_ref()
    }

    /// The delays before each retry, first to last, jittered: what a run
    /// that fails every attempt waits (without `retry_after` hints).
    pub fn delays(&self) -> Delays {
        Delays::new(self)
    }
}

/// Builds a [`RetryConfig`]; [`build`](Self::build) checks every option.
#[derive(Clone, Debug)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct RetryConfigBuilder<L = NoAttemptTimeout> {
    config: RetryConfig<L>,
}

impl RetryConfigBuilder {
    /// Cuts off each attempt of [`retry_async`](super::retry_async) still
    /// running after `limit`, measured by its sleeper: the attempt fails
    /// with `E::from(TimeoutError)` and is judged like any failure (a
    /// timeout is worth another attempt). The error type must implement
    /// `From<TimeoutError>`, and the blocking [`retry`](super::retry),
    /// which could not cut a call off, does not take this configuration:
    /// both are compile errors.
    ///
    /// ```
    /// use std::time::Duration;
    /// use circuit_runtime::retry::{retry_async, RetryConfig};
    ///
    /// # futures::executor::block_on(async {
    /// let config = RetryConfig::builder()
    ///     .max_retries(1)
    ///     .base_delay(Duration::ZERO)
    ///     .attempt_timeout(Duration::from_secs(2))
    ///     .build()?;
    /// let sleep_at_once = |_| std::future::ready(()); // a real service passes its runtime's sleep
    /// let hangs = || std::future::pending::<Result<(), std::io::Error>>();
    /// let error = retry_async(&config, sleep_at_once, hangs).await.unwrap_err();
    /// assert_eq!(error.kind(), std::io::ErrorKind::TimedOut);
    /// assert_eq!(error.to_string(), "the attempt did not finish within 2s");
    /// # Ok::<(), circuit_runtime::ConfigError>(())
    /// # }).unwrap();
    /// ```
    pub fn attempt_timeout(self, limit: Duration) -> RetryConfigBuilder<AttemptTimeout> {
        let RetryConfig {
            max_retries,
            base_delay,
            max_delay,
            exponential_base,
            jitter,
            max_elapsed,
            budget,
            clock,
            attempt_timeout: NoAttemptTimeout,
        } = self.config;
        RetryConfigBuilder {
            config: RetryConfig {
                max_retries,
                base_delay,
                max_delay,
                exponential_base,
                jitter,
                max_elapsed,
                budget,
                clock,
                attempt_timeout: AttemptTimeout(limit),
            },
        }
    }
}

impl<L: super::run::AttemptLimit> RetryConfigBuilder<L> {
    /// Retries after the first attempt, at most (0 to 1000; default 3).
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.config.max_retries = retries;
        self
    }

    /// The delay before the first retry (default 1 s).
    pub fn base_delay(mut self, delay: Duration) -> Self {
        self.config.base_delay = delay;
        self
    }

    /// The longest delay, at least `base_delay` (default 60 s).
    pub fn max_delay(mut self, delay: Duration) -> Self {
        self.config.max_delay = delay;
        self
    }

    /// What each delay is multiplied by, at least 1.0 (default 2.0).
    pub fn exponential_base(mut self, base: f64) -> Self {
        self.config.exponential_base = base;
        self
    }

    /// How delays are spread (default [`Jitter::Full`]); `true` and
    /// `false` work too.
    pub fn jitter(mut self, jitter: impl Into<Jitter>) -> Self {
        self.config.jitter = jitter.into();
        self
    }

    /// The most time attempts and delays may take together: no retry
    /// starts whose delay would end past it (default: no limit).
    pub fn max_elapsed(mut self, limit: Duration) -> Self {
        self.config.max_elapsed = Some(limit);
        self
    }

    /// Retries draw from `budget`, shared with every configuration that
    /// holds it (default: no budget).
    pub fn budget(mut self, budget: Arc<RetryBudget>) -> Self {
        self.config.budget = Some(budget);
        self
    }

    /// Measures elapsed time on `clock`, and sleeps by advancing it: a
    /// test's retries then wait no real time.
    pub fn clock(mut self, clock: ManualClock) -> Self {
        self.config.clock = Clock::Manual(clock);
        self
    }

    /// The configuration, or the first option out of range.
    ///
    /// # Errors
    ///
    /// [`ConfigError::OutOfRange`] naming the option and its range, or
    /// [`ConfigError::MaxDelayBelowBaseDelay`]: the checks and messages of
    /// `circuit_spec::retry`, which `#[retry]` makes at compile time.
    ///
    /// ```
    /// use std::time::Duration;
    /// use circuit_runtime::retry::RetryConfig;
    /// let err = RetryConfig::builder()
    ///     .base_delay(Duration::from_secs(10))
    ///     .max_delay(Duration::from_secs(1))
    ///     .build()
    ///     .unwrap_err();
    /// assert_eq!(
    ///     err.to_string(),
    ///     "`max_delay` (1s) must be at least `base_delay` (10s): raise `max_delay` or lower `base_delay`"
    /// );
    /// ```
    pub fn build(self) -> Result<RetryConfig<L>, ConfigError> {
        use circuit_spec::retry as table;
        let config = self.config;
        let out_of_range = |range: table::OutOfRange, value: String| ConfigError::OutOfRange {
            option: range.option,
            expected: range.expected,
            value,
        };
        table::max_retries(config.max_retries.into())
            .map_err(|range| out_of_range(range, config.max_retries.to_string()))?;
        table::exponential_base(config.exponential_base)
            .map_err(|range| out_of_range(range, config.exponential_base.to_string()))?;
        if table::delays(config.base_delay, config.max_delay).is_err() {
            return Err(ConfigError::MaxDelayBelowBaseDelay {
                base_delay: config.base_delay,
                max_delay: config.max_delay,
            });
        }
        let limits = [
            ("max_elapsed", config.max_elapsed),
            ("attempt_timeout", config.attempt_timeout.limit()),
        ];
        for (option, limit) in limits {
            if let Some(limit) = limit {
                table::limit(option, limit)
                    .map_err(|range| out_of_range(range, circuit_spec::duration::format(limit)))?;
            }
        }
        Ok(config)
    }
}

/// The delays of one retried call, first to last: see
/// [`RetryConfig::delays`].
#[derive(Clone, Debug)]
pub struct Delays {
    base_delay: Duration,
    max_delay: Duration,
    exponential_base: f64,
    jitter: Jitter,
    max_retries: u32,
    /// Retries delayed so far.
    retries: u32,
    /// The previous wait, for decorrelated jitter.
    previous: Duration,
    random: SplitMix,
}

impl Delays {
    pub(super) fn new<L>(config: &RetryConfig<L>) -> Delays {
        Delays {
            base_delay: config.base_delay,
            max_delay: config.max_delay,
            exponential_base: config.exponential_base,
            jitter: config.jitter,
            max_retries: config.max_retries,
            retries: 0,
            previous: config.base_delay,
            random: SplitMix(seed()),
        }
    }

    /// The wait before the next retry; with a `retry_after` hint, at least
    /// the hint. Never above `max_delay`.
    pub(super) fn next_delay(&mut self, hint: Option<Duration>) -> Duration {
        let exponent = i32::try_from(self.retries).unwrap_or(i32::MAX);
        let delay = saturating_mul(self.base_delay, self.exponential_base.powi(exponent))
            .min(self.max_delay);
        self.retries = self.retries.saturating_add(1);
        let unit = self.random.next_unit();
        let spread = match self.jitter {
            Jitter::None => delay,
            Jitter::Full => saturating_mul(delay, unit),
            Jitter::Equal => delay / 2 + saturating_mul(delay / 2, unit),
            Jitter::Decorrelated => {
                let high = saturating_mul(self.previous, 3.0).max(self.base_delay);
                let spread = saturating_mul(high.saturating_sub(self.base_delay), unit);
                let wait = self.base_delay.saturating_add(spread);
                self.previous = wait.min(self.max_delay);
                self.previous
            }
        };
        hint.map_or(spread, |hint| spread.max(hint))
            .min(self.max_delay)
    }
}

impl Iterator for Delays {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        (self.retries < self.max_retries).then(|| self.next_delay(None))
    }
}

/// A seed that differs between calls and between processes.
fn seed() -> u64 {
    use std::hash::BuildHasher;
    use std::sync::atomic::{AtomicU64, Ordering};
    static CALLS: AtomicU64 = AtomicU64::new(0);
    std::collections::hash_map::RandomState::new().hash_one(CALLS.fetch_add(1, Ordering::Relaxed))
}
