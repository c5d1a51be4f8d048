//! The options of a circuit breaker, in one table: each option's name,
//! kind, allowed range, default and meaning, the rules between options,
//! and the duration grammar.
//!
//! The `#[circuit_breaker]` attribute checks its literals against this
//! table at compile time, `ConfigBuilder::build` checks values against it
//! at run time, the file loader checks files against it, and a test holds
//! the README's option table to it: none of them states a rule of its own.
//! Use it through `circuit-runtime`; this crate has no dependencies so the
//! proc-macro crate can build on it too.
//!
//! Mistakes are plain data ([`Problem`]), which each caller turns into its
//! own error: a `syn::Error` at a token, a `ConfigError`, a file error at a
//! line and column.
//!
//! ```
//! use circuit_spec::{Key, Settings, Value};
//!
//! let mut settings = Settings::new();
//! settings.set(Key::WindowSize, Value::Count(5));
//! settings.set(Key::MinimumCalls, Value::Count(8));
//! let problems = settings.problems();
//! assert_eq!(
//!     problems[0].to_string(),
//!     "`minimum_calls` (8) must be at most `window_size` (5), or the window never holds \
//!      enough calls to judge a rate",
//! );
//! assert_eq!(problems[0].fix().as_deref(), Some("lower `minimum_calls` or raise `window_size`"));
//! ```

pub mod duration;
mod problem;
pub mod retry;
mod settings;
mod value;

use std::fmt;
use std::time::Duration;

pub use problem::Problem;
pub use settings::{Resolved, Settings};
pub use value::{Kind, Raw, Value};

/// The largest `success_threshold` and `half_open_max_calls`: the runtime
/// packs both into 16-bit fields of one atomic word.
pub const MAX_TRIAL_CALLS: u32 = u16::MAX as u32;

/// The largest `window_size`: each outcome of a count window is one 8-byte
/// word, so the largest window takes 8 MB.
pub const MAX_WINDOW_SIZE: u32 = 1_000_000;

/// One option of a breaker, named as its builder method, attribute key and
/// file key.
///
/// ```
/// use circuit_spec::Key;
/// assert_eq!(Key::from_name("failure_threshold"), Some(Key::FailureThreshold));
/// assert_eq!(Key::FailureThreshold.name(), "failure_threshold");
/// assert_eq!(Key::nearest("failure_treshold"), Some(Key::FailureThreshold));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    /// `failure_threshold`
    FailureThreshold,
    /// `success_threshold`
    SuccessThreshold,
    /// `half_open_max_calls`
    HalfOpenMaxCalls,
    /// `recovery_timeout`
    RecoveryTimeout,
    /// `failure_rate_threshold`
    FailureRateThreshold,
    /// `window_size`
    WindowSize,
    /// `window_duration`
    WindowDuration,
    /// `minimum_calls`
    MinimumCalls,
    /// `slow_call_duration`
    SlowCallDuration,
    /// `slow_call_rate_threshold`
    SlowCallRateThreshold,
    /// `recovery_backoff`
    RecoveryBackoff,
    /// `max_recovery_timeout`
    MaxRecoveryTimeout,
    /// `jitter`
    Jitter,
    /// `half_open_timeout`
    HalfOpenTimeout,
    /// `max_concurrent_calls`
    MaxConcurrentCalls,
}

/// How many options there are.
pub const KEY_COUNT: usize = 15;

impl Key {
    /// Every option, in the table's order.
    ///
    /// ```
    /// assert_eq!(circuit_spec::Key::ALL.len(), circuit_spec::KEY_COUNT);
    /// ```
    pub const ALL: [Key; KEY_COUNT] = [
        Key::FailureThreshold,
        Key::SuccessThreshold,
        Key::HalfOpenMaxCalls,
        Key::RecoveryTimeout,
        Key::FailureRateThreshold,
        Key::WindowSize,
        Key::WindowDuration,
        Key::MinimumCalls,
        Key::SlowCallDuration,
        Key::SlowCallRateThreshold,
        Key::RecoveryBackoff,
        Key::MaxRecoveryTimeout,
        Key::Jitter,
        Key::HalfOpenTimeout,
        Key::MaxConcurrentCalls,
    ];

    /// The option's row of the table.
    ///
    /// ```
    /// use circuit_spec::{Key, Kind};
    /// assert_eq!(Key::Jitter.spec().range.kind(), Kind::Number);
    /// ```
    pub fn spec(self) -> &'static OptionSpec {
        &OPTIONS[self as usize]
    }

    /// The option's name: its builder method, attribute key and file key.
    ///
    /// ```
    /// assert_eq!(circuit_spec::Key::Jitter.name(), "jitter");
    /// ```
    pub fn name(self) -> &'static str {
        self.spec().name
    }

    /// The option called `name`.
    ///
    /// ```
    /// assert_eq!(circuit_spec::Key::from_name("max_failures"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<Key> {
        Key::ALL.into_iter().find(|key| key.name() == name)
    }

    /// The option a misspelt `name` most likely meant, for "did you mean".
    ///
    /// ```
    /// use circuit_spec::Key;
    /// assert_eq!(Key::nearest("recovery_timout"), Some(Key::RecoveryTimeout));
    /// assert_eq!(Key::nearest("colour"), None);
    /// ```
    pub fn nearest(name: &str) -> Option<Key> {
        nearest(name, Key::ALL.into_iter().map(|key| (key.name(), key)))
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The message for a key that is neither an option nor one of `others`
/// (each with the example value to suggest): a "did you mean" when `name`
/// looks like a typo of one, else every key there is. What the attribute,
/// a configuration file and `Config: Deserialize` all say.
///
/// ```
/// let message = circuit_spec::unknown_key("failure_treshold", &[]);
/// assert_eq!(message, "unknown key `failure_treshold`: did you mean `failure_threshold`? write `failure_threshold = 5`");
/// let message = circuit_spec::unknown_key("colour", &[("base", "\"database\"")]);
/// assert!(message.starts_with("unknown key `colour`; the keys are: failure_threshold,"));
/// assert!(message.ends_with("max_concurrent_calls, base"));
/// ```
pub fn unknown_key(name: &str, others: &[(&'static str, &'static str)]) -> String {
    let keys = Key::ALL
        .into_iter()
        .map(|key| (key.name(), key.spec().example))
        .chain(others.iter().copied());
    match nearest(
        name,
        keys.clone().map(|(key, example)| (key, (key, example))),
    ) {
        Some((key, example)) => {
            format!("unknown key `{name}`: did you mean `{key}`? write `{key} = {example}`")
        }
        None => format!(
            "unknown key `{name}`; the keys are: {}",
            keys.map(|(key, _)| key).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// The candidate closest to `name` by edit distance, if close enough to be
/// a typo of it: what every "did you mean" in the project suggests.
///
/// ```
/// let keys = [("fallback", 1), ("name", 2)];
/// assert_eq!(circuit_spec::nearest("fallbak", keys), Some(1));
/// ```
pub fn nearest<'a, T>(name: &str, candidates: impl IntoIterator<Item = (&'a str, T)>) -> Option<T> {
    candidates
        .into_iter()
        .map(|(candidate, value)| (distance(name, candidate), candidate, value))
        .filter(|&(d, candidate, _)| d <= (candidate.len() / 3).max(2))
        .min_by_key(|&(d, _, _)| d)
        .map(|(_, _, value)| value)
}

/// Levenshtein distance.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != cb))
                .min(row[j] + 1)
                .min(above + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}

/// One row of the option table.
#[derive(Debug)]
pub struct OptionSpec {
    /// The option.
    pub key: Key,
    /// Its name everywhere.
    pub name: &'static str,
    /// The values it accepts.
    pub range: Range,
    /// The value in force when it is not set; `None` when what it sets is
    /// off unless asked for (a rate rule, a time window). Two defaults
    /// follow other options, see [`Settings::resolve`].
    pub default: Option<Value>,
    /// The default in words, as the README writes it.
    pub default_text: &'static str,
    /// What it does, in one line.
    pub meaning: &'static str,
    /// A value to suggest in messages, written as in the attribute or a
    /// file.
    pub example: &'static str,
}

/// The values an option accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Range {
    /// A whole number from 1 to `max`.
    Count {
        /// The largest value.
        max: u32,
    },
    /// A share of calls: greater than 0 and at most 1.
    Rate,
    /// A multiplier: at least 1, finite.
    Factor,
    /// A share of a duration: 0 to 1.
    Share,
    /// A duration above zero.
    Positive,
}

impl Range {
    /// The kind of value the range holds.
    ///
    /// ```
    /// use circuit_spec::{Kind, Range};
    /// assert_eq!(Range::Positive.kind(), Kind::Duration);
    /// ```
    pub fn kind(self) -> Kind {
        match self {
            Range::Count { .. } => Kind::Count,
            Range::Rate | Range::Factor | Range::Share => Kind::Number,
            Range::Positive => Kind::Duration,
        }
    }

    /// Whether `value` is in the range (a value of another kind is not).
    ///
    /// ```
    /// use circuit_spec::{Range, Value};
    /// assert!(Range::Rate.contains(Value::Number(1.0)));
    /// assert!(!Range::Rate.contains(Value::Number(0.0)));
    /// ```
    pub fn contains(self, value: Value) -> bool {
        match (self, value) {
            (Range::Count { max }, Value::Count(count)) => (1..=i64::from(max)).contains(&count),
            (Range::Rate, Value::Number(rate)) => rate > 0.0 && rate <= 1.0,
            (Range::Factor, Value::Number(factor)) => factor >= 1.0 && factor.is_finite(),
            (Range::Share, Value::Number(share)) => (0.0..=1.0).contains(&share),
            (Range::Positive, Value::Duration(duration)) => !duration.is_zero(),
            _ => false,
        }
    }

    /// The range in words, as an error about `value` states it: `"at least
    /// 1"`, or `"at most 4294967295"` for a count too large for its type.
    ///
    /// ```
    /// use circuit_spec::{Range, Value};
    /// let count = Range::Count { max: u32::MAX };
    /// assert_eq!(count.expected(Value::Count(0)), "at least 1");
    /// assert_eq!(count.expected(Value::Count(1 << 40)), "at most 4294967295");
    /// ```
    pub fn expected(self, value: Value) -> &'static str {
        match self {
            Range::Count { max } if max == u32::MAX => match value {
                Value::Count(count) if count > i64::from(max) => "at most 4294967295",
                _ => "at least 1",
            },
            Range::Count { max } if max == MAX_TRIAL_CALLS => "between 1 and 65535",
            Range::Count { .. } => "between 1 and 1000000",
            Range::Rate => "greater than 0 and at most 1",
            Range::Factor => "at least 1.0",
            Range::Share => "between 0 and 1",
            Range::Positive => "greater than zero",
        }
    }

    /// The range in words for the README: the whole range, not the side a
    /// value fell off.
    ///
    /// ```
    /// assert_eq!(circuit_spec::Range::Rate.describe(), "0 < r <= 1");
    /// ```
    pub fn describe(self) -> &'static str {
        match self {
            Range::Count { max } if max == u32::MAX => "at least 1",
            Range::Count { max } if max == MAX_TRIAL_CALLS => "1 to 65535",
            Range::Count { .. } => "1 to 1,000,000",
            Range::Rate => "0 < r <= 1",
            Range::Factor => "at least 1.0",
            Range::Share => "0 to 1",
            Range::Positive => "above zero",
        }
    }
}

const fn secs(secs: u64) -> Value {
    Value::Duration(Duration::from_secs(secs))
}

/// The option table: one row per [`Key`], in its order.
pub static OPTIONS: [OptionSpec; KEY_COUNT] = [
    OptionSpec {
        key: Key::FailureThreshold,
        name: "failure_threshold",
        range: Range::Count { max: u32::MAX },
        default: Some(Value::Count(5)),
        default_text: "5",
        meaning: "consecutive failures that trip a closed breaker",
        example: "5",
    },
    OptionSpec {
        key: Key::SuccessThreshold,
        name: "success_threshold",
        range: Range::Count {
            max: MAX_TRIAL_CALLS,
        },
        default: Some(Value::Count(1)),
        default_text: "1",
        meaning: "consecutive trial successes that close a half-open breaker",
        example: "1",
    },
    OptionSpec {
        key: Key::HalfOpenMaxCalls,
        name: "half_open_max_calls",
        range: Range::Count {
            max: MAX_TRIAL_CALLS,
        },
        default: Some(Value::Count(1)),
        default_text: "1",
        meaning: "trial calls a half-open breaker lets run at once",
        example: "1",
    },
    OptionSpec {
        key: Key::RecoveryTimeout,
        name: "recovery_timeout",
        range: Range::Positive,
        default: Some(secs(60)),
        default_text: "60s",
        meaning: "how long the breaker stays open before a trial",
        example: "\"30s\"",
    },
    OptionSpec {
        key: Key::FailureRateThreshold,
        name: "failure_rate_threshold",
        range: Range::Rate,
        default: None,
        default_text: "none",
        meaning: "trip when the share of failures in the window reaches this rate",
        example: "0.5",
    },
    OptionSpec {
        key: Key::WindowSize,
        name: "window_size",
        range: Range::Count {
            max: MAX_WINDOW_SIZE,
        },
        default: Some(Value::Count(10)),
        default_text: "10",
        meaning: "the window is the last N outcomes; not with `window_duration`",
        example: "10",
    },
    OptionSpec {
        key: Key::WindowDuration,
        name: "window_duration",
        range: Range::Positive,
        default: None,
        default_text: "none",
        meaning: "the window is the outcomes of the last span instead (it moves in tenths of it)",
        example: "\"10s\"",
    },
    OptionSpec {
        key: Key::MinimumCalls,
        name: "minimum_calls",
        range: Range::Count { max: u32::MAX },
        default: Some(Value::Count(10)),
        default_text: "10, or `window_size` if smaller",
        meaning: "outcomes the window must hold before a rate can trip; at most `window_size`",
        example: "10",
    },
    OptionSpec {
        key: Key::SlowCallDuration,
        name: "slow_call_duration",
        range: Range::Positive,
        default: None,
        default_text: "none",
        meaning: "calls taking at least this long count as slow",
        example: "\"2s\"",
    },
    OptionSpec {
        key: Key::SlowCallRateThreshold,
        name: "slow_call_rate_threshold",
        range: Range::Rate,
        default: None,
        default_text: "none",
        meaning: "trip when the share of slow calls in the window reaches this rate; needs `slow_call_duration`",
        example: "0.5",
    },
    OptionSpec {
        key: Key::RecoveryBackoff,
        name: "recovery_backoff",
        range: Range::Factor,
        default: Some(Value::Number(1.0)),
        default_text: "1.0",
        meaning: "each reopen from half-open multiplies the open time by this",
        example: "2.0",
    },
    OptionSpec {
        key: Key::MaxRecoveryTimeout,
        name: "max_recovery_timeout",
        range: Range::Positive,
        default: Some(secs(600)),
        default_text: "10m, or `recovery_timeout` if longer",
        meaning: "the cap on the backed-off open time; at least `recovery_timeout`",
        example: "\"10m\"",
    },
    OptionSpec {
        key: Key::Jitter,
        name: "jitter",
        range: Range::Share,
        default: Some(Value::Number(0.0)),
        default_text: "0.0",
        meaning: "spread each open time randomly by up to this share of itself",
        example: "0.1",
    },
    OptionSpec {
        key: Key::HalfOpenTimeout,
        name: "half_open_timeout",
        range: Range::Positive,
        default: Some(secs(60)),
        default_text: "60s",
        meaning: "a half-open period with no verdict after this long reopens the breaker",
        example: "\"60s\"",
    },
    OptionSpec {
        key: Key::MaxConcurrentCalls,
        name: "max_concurrent_calls",
        range: Range::Count { max: u32::MAX },
        default: None,
        default_text: "none",
        meaning: "calls that may run at once; the excess is rejected at once, not queued",
        example: "10",
    },
];

/// The README's option table, generated from [`OPTIONS`]: a test holds the
/// README to it.
///
/// ```
/// let table = circuit_spec::markdown_table();
/// assert!(table.starts_with("| option | default | range | meaning |\n|---|---|---|---|\n"));
/// assert!(table.contains("| `jitter` | 0.0 | 0 to 1 | spread each open time"));
/// ```
pub fn markdown_table() -> String {
    use std::fmt::Write;

    let mut table = String::from("| option | default | range | meaning |\n|---|---|---|---|\n");
    for spec in &OPTIONS {
        let _ = writeln!(
            table,
            "| `{}` | {} | {} | {} |",
            spec.name,
            spec.default_text,
            spec.range.describe(),
            spec.meaning
        );
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_is_in_the_place_of_its_key() {
        for (index, spec) in OPTIONS.iter().enumerate() {
            assert_eq!(spec.key as usize, index, "{}", spec.name);
            assert_eq!(Key::ALL[index], spec.key);
        }
    }

    #[test]
    fn every_default_is_in_range_and_every_example_parses() {
        for spec in &OPTIONS {
            if let Some(default) = spec.default {
                assert!(spec.range.contains(default), "{}", spec.name);
            }
            let raw = match spec.example.strip_prefix('"') {
                Some(text) => Raw::Str(text.trim_end_matches('"')),
                None if spec.example.contains('.') => Raw::Float(spec.example.parse().unwrap()),
                None => Raw::Integer(spec.example.parse().unwrap()),
            };
            let value = spec.key.value_from(raw).expect(spec.name);
            assert!(spec.range.contains(value), "{}", spec.name);
        }
    }

    #[test]
    fn near_misses_are_found_and_strangers_are_not() {
        assert_eq!(
            Key::nearest("failure_treshold"),
            Some(Key::FailureThreshold)
        );
        assert_eq!(Key::nearest("windowsize"), Some(Key::WindowSize));
        assert_eq!(Key::nearest("colour"), None);
    }
}
