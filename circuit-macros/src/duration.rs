//! Durations as the attribute writes them: `"250ms"`, `"30s"`, `"2m"`,
//! `"1h"`. A whole number and a unit, nothing else, so a value reads the same
//! in the attribute, the README and a configuration file.

use std::time::Duration;

const UNITS: &str = "ms (milliseconds), s (seconds), m (minutes) or h (hours)";

/// Parses `text`; the error says what to write instead.
pub fn parse(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    let digits_end = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (digits, unit) = trimmed.split_at(digits_end);
    let unit = unit.trim_start();
    if digits.is_empty() {
        return Err(format!(
            "\"{text}\" is not a duration: write a whole number followed by {UNITS}, e.g. \"30s\""
        ));
    }
    if unit.is_empty() {
        return Err(format!(
            "\"{text}\" has no unit: write \"{digits}s\" for seconds or \"{digits}ms\" for \
             milliseconds (a bare integer without quotes, {digits}, also means seconds)"
        ));
    }
    let amount: u64 = digits
        .parse()
        .map_err(|_| format!("\"{text}\" is too large for a duration"))?;
    let per_unit: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ if unit.starts_with('.') => {
            return Err(format!(
                "\"{text}\": durations take a whole number; write fractions in a smaller unit, \
                 e.g. \"1500ms\" for 1.5 seconds"
            ))
        }
        _ => {
            return Err(format!(
            "\"{text}\" has an unknown unit `{unit}`: write a whole number followed by {UNITS}, \
                 e.g. \"{digits}s\""
        ))
        }
    };
    amount
        .checked_mul(per_unit)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("\"{text}\" is too large for a duration"))
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
    }
}
