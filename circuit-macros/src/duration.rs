//! Durations as the attribute writes them: `"250ms"`, `"30s"`, `"2m"`,
//! `"1h"`, or several from the largest unit down, `"1m30s"`. Whole numbers
//! and units, nothing else, so a value reads the same in the attribute, the
//! README and a configuration file.

use std::time::Duration;

const UNITS: &str = "ms (milliseconds), s (seconds), m (minutes) or h (hours)";

/// Milliseconds per unit, largest first: the order compound durations are
/// written in.
const SCALE: [(&str, u64); 4] = [("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)];

/// Parses `text`; the error says what to write instead.
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
