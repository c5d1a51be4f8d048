//! The retry options: their names, ranges, defaults and meanings, and the
//! checks of their values that `RetryConfigBuilder::build` and
//! `#[retry]` both make, so an attribute's literal never fails at run
//! time.

use std::time::Duration;

/// One row of the retry option table.
#[derive(Debug)]
pub struct RetryOption {
    /// Its name everywhere: builder method, attribute key.
    pub name: &'static str,
    /// The values it accepts, in words.
    pub range: &'static str,
    /// Its default, in words.
    pub default_text: &'static str,
    /// What it does, in one line.
    pub meaning: &'static str,
    /// A value to suggest in messages, as the attribute writes it.
    pub example: &'static str,
}

/// The most retries a retry configuration allows: beyond, a retry loop is
/// an outage amplifier, not a policy.
pub const MAX_RETRIES: u32 = 1000;

/// The retry jitter modes, as options write them.
pub const JITTER_MODES: [&str; 4] = ["none", "full", "equal", "decorrelated"];

/// The default delay before the first retry.
pub const DEFAULT_BASE_DELAY: Duration = Duration::from_secs(1);

/// The default longest delay.
pub const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(60);

/// The retry option table.
pub static RETRY_OPTIONS: [RetryOption; 7] = [
    RetryOption {
        name: "max_retries",
        range: "0 to 1000",
        default_text: "3",
        meaning: "retries after the first attempt",
        example: "3",
    },
    RetryOption {
        name: "base_delay",
        range: "zero or more",
        default_text: "1s",
        meaning: "the delay before the first retry, before jitter",
        example: "\"100ms\"",
    },
    RetryOption {
        name: "max_delay",
        range: "at least `base_delay`",
        default_text: "60s",
        meaning: "the longest delay, jitter and `retry_after` hints included",
        example: "\"5s\"",
    },
    RetryOption {
        name: "exponential_base",
        range: "at least 1.0",
        default_text: "2.0",
        meaning: "what each delay is multiplied by",
        example: "2.0",
    },
    RetryOption {
        name: "jitter",
        range: "none, full, equal, decorrelated",
        default_text: "full",
        meaning: "how delays are spread (`true`/`false` mean full/none)",
        example: "\"full\"",
    },
    RetryOption {
        name: "max_elapsed",
        range: "above zero",
        default_text: "none",
        meaning: "the most time attempts and delays take together",
        example: "\"30s\"",
    },
    RetryOption {
        name: "attempt_timeout",
        range: "above zero",
        default_text: "none",
        meaning: "cut off an attempt still running after this (`async` only)",
        example: "\"2s\"",
    },
];

/// A retry option's value out of its range: `{option}` must be
/// `{expected}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfRange {
    /// The option.
    pub option: &'static str,
    /// Its range, as a message states it.
    pub expected: &'static str,
}

/// `retries` as a `max_retries`.
///
/// # Errors
///
/// Above [`MAX_RETRIES`].
///
/// ```
/// assert!(circuit_spec::retry::max_retries(5000).is_err());
/// ```
pub fn max_retries(retries: u64) -> Result<u32, OutOfRange> {
    u32::try_from(retries)
        .ok()
        .filter(|retries| *retries <= MAX_RETRIES)
        .ok_or(OutOfRange {
            option: "max_retries",
            expected: "between 0 and 1000",
        })
}

/// `base` as an `exponential_base`.
///
/// # Errors
///
/// Below 1 or not finite.
///
/// ```
/// assert!(circuit_spec::retry::exponential_base(0.5).is_err());
/// ```
pub fn exponential_base(base: f64) -> Result<f64, OutOfRange> {
    if base >= 1.0 && base.is_finite() {
        Ok(base)
    } else {
        Err(OutOfRange {
            option: "exponential_base",
            expected: "at least 1.0",
        })
    }
}

/// `limit` as a `max_elapsed` or `attempt_timeout` (`option`).
///
/// # Errors
///
/// Zero.
///
/// ```
/// assert!(circuit_spec::retry::limit("max_elapsed", std::time::Duration::ZERO).is_err());
/// ```
pub fn limit(option: &'static str, limit: Duration) -> Result<Duration, OutOfRange> {
    if limit.is_zero() {
        Err(OutOfRange {
            option,
            expected: "greater than zero",
        })
    } else {
        Ok(limit)
    }
}

/// The jitter mode `text` names, by its canonical name.
///
/// # Errors
///
/// A sentence listing the modes.
///
/// ```
/// assert_eq!(circuit_spec::retry::jitter("true"), Ok("full"));
/// assert!(circuit_spec::retry::jitter("sometimes").is_err());
/// ```
pub fn jitter(text: &str) -> Result<&'static str, String> {
    match text {
        "true" => Ok("full"),
        "false" => Ok("none"),
        _ => JITTER_MODES
            .iter()
            .find(|mode| **mode == text)
            .copied()
            .ok_or_else(|| {
                format!(
                    "`jitter` is one of \"none\", \"full\", \"equal\", \"decorrelated\" (or \
                     `true`, `false`), not \"{text}\""
                )
            }),
    }
}

/// Whether `max_delay` is at least `base_delay`.
///
/// # Errors
///
/// A sentence naming both.
///
/// ```
/// use std::time::Duration;
/// assert!(circuit_spec::retry::delays(Duration::from_secs(10), Duration::from_secs(1)).is_err());
/// ```
pub fn delays(base_delay: Duration, max_delay: Duration) -> Result<(), String> {
    if max_delay < base_delay {
        Err(format!(
            "`max_delay` ({}) must be at least `base_delay` ({}): raise `max_delay` or lower \
             `base_delay`",
            crate::duration::format(max_delay),
            crate::duration::format(base_delay)
        ))
    } else {
        Ok(())
    }
}

/// The README's retry option table, generated from [`RETRY_OPTIONS`]: a
/// test holds the README to it.
///
/// ```
/// assert!(circuit_spec::retry::markdown_table().contains("| `max_retries` |"));
/// ```
pub fn markdown_table() -> String {
    use std::fmt::Write;
    let mut table = String::from("| option | range | default | meaning |\n|---|---|---|---|\n");
    for option in &RETRY_OPTIONS {
        let _ = writeln!(
            table,
            "| `{}` | {} | {} | {} |",
            option.name, option.range, option.default_text, option.meaning
        );
    }
    table
}
