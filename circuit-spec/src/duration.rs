//! Durations as options are written: `"250ms"`, `"30s"`, `"2m"`, `"1h"`,
//! or several from the largest unit down, `"1m30s"`. Whole numbers and
//! units, nothing else, so a value reads the same in the attribute, the
//! README and a configuration file.
//!
//! ```
//! use std::time::Duration;
//! use circuit_spec::duration;
//! assert_eq!(duration::parse("1m30s"), Ok(Duration::from_secs(90)));
//! assert_eq!(duration::format(Duration::from_millis(90_250)), "1m30s250ms");
//! ```

use std::time::Duration;

const UNITS: &str = "ms (milliseconds), s (seconds), m (minutes) or h (hours)";

/// Milliseconds per unit, largest first: the order compound durations are
/// written in.
const SCALE: [(&str, u64); 4] = [("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)];

/// Parses `text`; the error says what to write instead.
///
/// # Errors
///
/// A sentence naming the mistake and what to write instead.
///
/// ```
/// let err = circuit_spec::duration::parse("10").unwrap_err();
/// assert!(err.contains("write \"10s\""));
/// ```
pub fn parse(text: &str) -> Result<Duration, String> {
    let mut rest = text.trim();
    if rest.is_empty() || !rest.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(format!(
            "\"{text}\" is not a duration: write a whole number followed by {UNITS}, e.g. \"30s\""
        ));
    }
    let too_large = || format!("\"{text}\" is too large for a duration");
    let mut total: u64 = 0;
    // The rank in `SCALE` of the last unit read: each part's must be lower.
    let mut last_rank = None;
    while !rest.is_empty() {
        let digits_end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (digits, after) = rest.split_at(digits_end);
        if digits.is_empty() {
            return Err(format!(
                "\"{text}\" is not a duration: after `{}` write another whole number and \
                 unit, as in \"1m30s\"",
                &text.trim()[..text.trim().len() - rest.len()]
            ));
        }
        let after = after.trim_start();
        let unit_end = after
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_end);
        if unit.is_empty() {
            return Err(if after.starts_with('.') {
                format!(
                    "\"{text}\": durations take a whole number; write fractions in a smaller \
                     unit, e.g. \"1500ms\" for 1.5 seconds"
                )
            } else if last_rank.is_none() && after.is_empty() {
                format!(
                    "\"{text}\" has no unit: write \"{digits}s\" for seconds or \"{digits}ms\" \
                     for milliseconds (a bare integer without quotes, {digits}, also means \
                     seconds)"
                )
            } else {
                format!(
                    "\"{text}\": `{digits}` has no unit: write a whole number followed by \
                     {UNITS}, e.g. \"{digits}s\""
                )
            });
        }
        let Some(rank) = SCALE.iter().position(|(name, _)| *name == unit) else {
            return Err(format!(
                "\"{text}\" has an unknown unit `{unit}`: write a whole number followed by \
                 {UNITS}, e.g. \"{digits}s\""
            ));
        };
        if last_rank.is_some_and(|last| rank <= last) {
            return Err(format!(
                "\"{text}\": write each unit once, from the largest down, as in \"1h30m\" or \
                 \"1m30s\""
            ));
        }
        last_rank = Some(rank);
        let amount: u64 = digits.parse().map_err(|_| too_large())?;
        let part = amount.checked_mul(SCALE[rank].1).ok_or_else(too_large)?;
        total = total.checked_add(part).ok_or_else(too_large)?;
        rest = next.trim_start();
    }
    Ok(Duration::from_millis(total))
}

/// Writes `duration` in the grammar [`parse`] reads, from the largest unit
/// down; a duration finer than a millisecond, which the grammar cannot
/// write, as `Debug` does (`"1.5µs"`).
///
/// ```
/// use std::time::Duration;
/// use circuit_spec::duration::format;
/// assert_eq!(format(Duration::from_secs(3600)), "1h");
/// assert_eq!(format(Duration::ZERO), "0s");
/// assert_eq!(format(Duration::from_nanos(1500)), "1.5µs");
/// ```
pub fn format(duration: std::time::Duration) -> String {
    use std::fmt::Write;

    if duration.subsec_nanos() % 1_000_000 != 0 {
        return format!("{duration:?}");
    }
    if duration.is_zero() {
        return "0s".to_owned();
    }
    let mut rest = duration.as_millis();
    let mut text = String::new();
    for (unit, millis) in SCALE {
        let amount = rest / u128::from(millis);
        if amount > 0 {
            let _ = write!(text, "{amount}{unit}");
            rest -= amount * u128::from(millis);
        }
    }
    text
}

/// Writes `duration` rounded up to the millisecond, the grammar's finest
/// unit: for time left, which never reads `"0ms"` while any is.
///
/// ```
/// use std::time::Duration;
/// use circuit_spec::duration::format_millis_up;
/// assert_eq!(format_millis_up(Duration::from_micros(1)), "1ms");
/// assert_eq!(format_millis_up(Duration::from_micros(61_500_200)), "1m1s501ms");
/// assert_eq!(format_millis_up(Duration::ZERO), "0s");
/// ```
pub fn format_millis_up(duration: std::time::Duration) -> String {
    let millis = u64::try_from(duration.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX);
    format(std::time::Duration::from_millis(millis))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unit_parses() {
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn units_combine_from_the_largest_down() {
        assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5_400)));
        assert_eq!(parse("2s500ms"), Ok(Duration::from_millis(2_500)));
        assert_eq!(parse("1h 2m 3s 4ms"), Ok(Duration::from_millis(3_723_004)));
    }

    #[test]
    fn format_writes_what_parse_reads() {
        for millis in [1, 999, 1_000, 59_999, 60_000, 90_250, 3_600_000, 86_400_001] {
            let duration = Duration::from_millis(millis);
            assert_eq!(parse(&format(duration)), Ok(duration), "{millis} ms");
        }
    }

    #[test]
    fn mistakes_say_what_to_write() {
        assert!(parse("10").unwrap_err().contains("write \"10s\""));
        assert!(parse("5 parsecs")
            .unwrap_err()
            .contains("unknown unit `parsecs`"));
        assert!(parse("1.5s").unwrap_err().contains("\"1500ms\""));
        assert!(parse("soon").unwrap_err().contains("not a duration"));
        assert!(parse("99999999999999999999h")
            .unwrap_err()
            .contains("too large"));
        assert!(parse("30s1m")
            .unwrap_err()
            .contains("from the largest down"));
        assert!(parse("1m1m").unwrap_err().contains("each unit once"));
        assert!(parse("1m30").unwrap_err().contains("`30` has no unit"));
        assert!(parse("1m-30s").unwrap_err().contains("after `1m`"));
    }
}
