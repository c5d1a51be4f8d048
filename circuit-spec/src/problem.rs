//! What can be wrong with a set of options, as plain data: each caller
//! turns a problem into its own error, spanned at a token, tied to a line
//! of a file, or returned from a builder.

use std::fmt;
use std::time::Duration;

use crate::{Key, Value};

/// One mistake in a set of options.
///
/// `Display` writes the mistake; [`explain`](Problem::explain) adds what
/// to write instead, for readers that take keys (the attribute, a file).
///
/// ```
/// use circuit_spec::{Key, Problem, Value};
/// let problem = Problem::OutOfRange { key: Key::Jitter, value: Value::Number(2.0) };
/// assert_eq!(problem.to_string(), "`jitter` must be between 0 and 1, got 2");
/// assert_eq!(problem.explain(|_, value| value.to_string()), "`jitter` must be between 0 and 1, got 2: write e.g. `jitter = 0.1`");
/// ```
#[derive(Clone, Debug, PartialEq)]
pub enum Problem {
    /// A value of the wrong kind: a string for a count, say.
    WrongKind {
        /// The option.
        key: Key,
        /// What was found, in words (`"a string"`).
        found: &'static str,
    },
    /// A string that is not a duration.
    BadDuration {
        /// The option.
        key: Key,
        /// What is wrong with it and what to write instead.
        message: String,
    },
    /// A value outside the option's range.
    OutOfRange {
        /// The option.
        key: Key,
        /// The value.
        value: Value,
    },
    /// Both `window_size` and `window_duration` were set.
    ConflictingWindows,
    /// `minimum_calls` is larger than the count window can ever hold.
    MinimumCallsExceedWindow {
        /// The minimum.
        minimum_calls: i64,
        /// The window's size.
        window_size: i64,
        /// Whether the size is the default, not a value that was set.
        window_size_is_default: bool,
    },
    /// `max_recovery_timeout` is shorter than `recovery_timeout`.
    MaxRecoveryTimeoutTooShort {
        /// The cap.
        max_recovery_timeout: Duration,
        /// The base open time it would cut short.
        recovery_timeout: Duration,
        /// Whether the base is the default, not a value that was set.
        recovery_timeout_is_default: bool,
    },
    /// `slow_call_rate_threshold` without `slow_call_duration`.
    SlowCallRateWithoutDuration,
}

impl Problem {
    /// The option an error about this problem should point at.
    ///
    /// ```
    /// use circuit_spec::{Key, Problem};
    /// assert_eq!(Problem::ConflictingWindows.key(), Key::WindowDuration);
    /// ```
    pub fn key(&self) -> Key {
        match self {
            Problem::WrongKind { key, .. }
            | Problem::BadDuration { key, .. }
            | Problem::OutOfRange { key, .. } => *key,
            Problem::ConflictingWindows => Key::WindowDuration,
            Problem::MinimumCallsExceedWindow { .. } => Key::MinimumCalls,
            Problem::MaxRecoveryTimeoutTooShort { .. } => Key::MaxRecoveryTimeout,
            Problem::SlowCallRateWithoutDuration => Key::SlowCallRateThreshold,
        }
    }

    /// The mistake, with each value that was set written by `render` (the
    /// attribute writes values as they were typed, `"1m"` with its quotes).
    ///
    /// ```
    /// use circuit_spec::{Key, Problem, Value};
    /// let problem = Problem::OutOfRange { key: Key::Jitter, value: Value::Number(2.0) };
    /// assert_eq!(problem.describe(|_, _| "2.0".to_owned()), "`jitter` must be between 0 and 1, got 2.0");
    /// ```
    pub fn describe(&self, render: impl Fn(Key, Value) -> String) -> String {
        match self {
            Problem::WrongKind { key, .. } => {
                format!("`{key}` takes {}", key.spec().range.kind().describe())
            }
            Problem::BadDuration { key, message } => format!("`{key}`: {message}"),
            Problem::OutOfRange { key, value } => format!(
                "`{key}` must be {}, got {}",
                key.spec().range.expected(*value),
                render(*key, *value)
            ),
            Problem::ConflictingWindows => "`window_size` and `window_duration` cannot both be \
                                            set: a breaker keeps either a count window or a time \
                                            window"
                .to_owned(),
            Problem::MinimumCallsExceedWindow {
                minimum_calls,
                window_size,
                window_size_is_default,
            } => {
                format!(
                "`minimum_calls` ({}) must be at most `window_size` ({}{}), or the window never \
                 holds enough calls to judge a rate",
                render(Key::MinimumCalls, Value::Count(*minimum_calls)),
                if *window_size_is_default {
                    Value::Count(*window_size).to_string()
                } else {
                    render(Key::WindowSize, Value::Count(*window_size))
                },
                if *window_size_is_default { ", the default" } else { "" },
            )
            }
            Problem::MaxRecoveryTimeoutTooShort {
                max_recovery_timeout,
                recovery_timeout,
                recovery_timeout_is_default,
            } => format!(
                "`max_recovery_timeout` ({}) must be at least `recovery_timeout` ({}{}): backoff \
                 only ever lengthens the open time",
                render(
                    Key::MaxRecoveryTimeout,
                    Value::Duration(*max_recovery_timeout)
                ),
                if *recovery_timeout_is_default {
                    Value::Duration(*recovery_timeout).to_string()
                } else {
                    render(Key::RecoveryTimeout, Value::Duration(*recovery_timeout))
                },
                if *recovery_timeout_is_default {
                    ", the default"
                } else {
                    ""
                },
            ),
            Problem::SlowCallRateWithoutDuration => "`slow_call_rate_threshold` needs \
                                                     `slow_call_duration` to say which calls are \
                                                     slow"
                .to_owned(),
        }
    }

    /// What to write instead, in the terms of keys and values, or `None`
    /// when the mistake already says it.
    ///
    /// ```
    /// assert_eq!(circuit_spec::Problem::ConflictingWindows.fix().as_deref(), Some("remove one of them"));
    /// ```
    pub fn fix(&self) -> Option<String> {
        Some(match self {
            Problem::WrongKind { key, .. } => {
                format!("write `{key} = {}`", key.spec().example)
            }
            Problem::BadDuration { .. } => return None,
            Problem::OutOfRange { key, .. } => {
                format!("write e.g. `{key} = {}`", key.spec().example)
            }
            Problem::ConflictingWindows => "remove one of them".to_owned(),
            Problem::MinimumCallsExceedWindow { .. } => {
                "lower `minimum_calls` or raise `window_size`".to_owned()
            }
            Problem::MaxRecoveryTimeoutTooShort { .. } => {
                "raise `max_recovery_timeout` or leave it out".to_owned()
            }
            Problem::SlowCallRateWithoutDuration => {
                format!(
                    "add e.g. `slow_call_duration = {}`",
                    Key::SlowCallDuration.spec().example
                )
            }
        })
    }

    /// The mistake and what to write instead, for readers that take keys:
    /// the attribute's compile errors and a file's errors.
    ///
    /// ```
    /// let message = circuit_spec::Problem::SlowCallRateWithoutDuration.explain(|_, v| v.to_string());
    /// assert_eq!(message, "`slow_call_rate_threshold` needs `slow_call_duration` to say which calls are slow: add e.g. `slow_call_duration = \"2s\"`");
    /// ```
    pub fn explain(&self, render: impl Fn(Key, Value) -> String) -> String {
        let described = self.describe(render);
        // These two sentences already explain after a colon; a second
        // colon would read badly.
        let separator = match self {
            Problem::ConflictingWindows | Problem::MaxRecoveryTimeoutTooShort { .. } => "; ",
            _ => ": ",
        };
        match self.fix() {
            Some(fix) => format!("{described}{separator}{fix}"),
            None => described,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe(|_, value| value.to_string()))
    }
}

impl std::error::Error for Problem {}
