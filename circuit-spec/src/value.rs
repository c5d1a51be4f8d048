//! Option values: what an option holds once read, and what a reader (the
//! attribute's tokens, a file) hands over before it is known to fit.

use std::fmt;
use std::time::Duration;

use crate::{duration, Key, Problem};

/// The kind of value an option takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A whole number.
    Count,
    /// A real number.
    Number,
    /// A duration.
    Duration,
}

impl Kind {
    /// The kind in words, as messages say what a key takes.
    ///
    /// ```
    /// assert_eq!(circuit_spec::Kind::Count.describe(), "a whole number");
    /// ```
    pub fn describe(self) -> &'static str {
        match self {
            Kind::Count => "a whole number",
            Kind::Number => "a number, without quotes",
            Kind::Duration => {
                "a duration: a string with a unit (\"250ms\", \"30s\", \"2m\", \"1h\") or an \
                 integer of seconds"
            }
        }
    }
}

/// An option's value, of the option's kind but not yet checked against
/// its range.
///
/// ```
/// use std::time::Duration;
/// use circuit_spec::Value;
/// assert_eq!(Value::Duration(Duration::from_secs(90)).to_string(), "1m30s");
/// assert_eq!(Value::Number(0.5).to_string(), "0.5");
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value {
    /// A whole number; negative ones are kept so a range error can name
    /// them.
    Count(i64),
    /// A real number.
    Number(f64),
    /// A duration.
    Duration(Duration),
}

impl Value {
    /// The kind of the value.
    ///
    /// ```
    /// use circuit_spec::{Kind, Value};
    /// assert_eq!(Value::Count(3).kind(), Kind::Count);
    /// ```
    pub fn kind(self) -> Kind {
        match self {
            Value::Count(_) => Kind::Count,
            Value::Number(_) => Kind::Number,
            Value::Duration(_) => Kind::Duration,
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Count(count) => write!(f, "{count}"),
            Value::Number(number) => write!(f, "{number}"),
            Value::Duration(value) => f.write_str(&duration::format(*value)),
        }
    }
}

/// A value as a reader found it, before it is known to be of the option's
/// kind: the attribute's literal, a file's value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Raw<'a> {
    /// An integer, without quotes.
    Integer(i64),
    /// A number with a fraction or an exponent.
    Float(f64),
    /// A quoted string.
    Str(&'a str),
    /// Anything else, named by its type (`"a boolean"`, `"a table"`).
    Other(&'static str),
}

impl Key {
    /// Reads `raw` as this option's value, by the rules every reader
    /// shares: a count is an integer; a number is an integer or a float; a
    /// duration is a string in the [duration grammar](crate::duration) or
    /// an integer of seconds.
    ///
    /// # Errors
    ///
    /// [`Problem::WrongKind`] when `raw` is not of the option's kind,
    /// [`Problem::BadDuration`] for a string that is not a duration, and
    /// [`Problem::OutOfRange`] for a negative number of seconds.
    ///
    /// ```
    /// use std::time::Duration;
    /// use circuit_spec::{Key, Raw, Value};
    /// assert_eq!(Key::RecoveryTimeout.value_from(Raw::Str("1m30s")), Ok(Value::Duration(Duration::from_secs(90))));
    /// assert_eq!(Key::RecoveryTimeout.value_from(Raw::Integer(5)), Ok(Value::Duration(Duration::from_secs(5))));
    /// assert_eq!(Key::Jitter.value_from(Raw::Integer(1)), Ok(Value::Number(1.0)));
    /// let err = Key::FailureThreshold.value_from(Raw::Str("5")).unwrap_err();
    /// assert_eq!(err.to_string(), "`failure_threshold` takes a whole number");
    /// ```
    pub fn value_from(self, raw: Raw<'_>) -> Result<Value, Problem> {
        let wrong = || Problem::WrongKind {
            key: self,
            found: raw_kind(raw),
        };
        match (self.spec().range.kind(), raw) {
            (Kind::Count, Raw::Integer(count)) => Ok(Value::Count(count)),
            #[allow(clippy::cast_precision_loss)] // option numbers are small
            (Kind::Number, Raw::Integer(number)) => Ok(Value::Number(number as f64)),
            (Kind::Number, Raw::Float(number)) => Ok(Value::Number(number)),
            (Kind::Duration, Raw::Str(text)) => duration::parse(text)
                .map(Value::Duration)
                .map_err(|message| Problem::BadDuration { key: self, message }),
            (Kind::Duration, Raw::Integer(seconds)) => u64::try_from(seconds)
                .map(|seconds| Value::Duration(Duration::from_secs(seconds)))
                .map_err(|_| Problem::OutOfRange {
                    key: self,
                    value: Value::Count(seconds),
                }),
            _ => Err(wrong()),
        }
    }
}

fn raw_kind(raw: Raw<'_>) -> &'static str {
    match raw {
        Raw::Integer(_) => "an integer",
        Raw::Float(_) => "a number with a fraction",
        Raw::Str(_) => "a string",
        Raw::Other(kind) => kind,
    }
}
