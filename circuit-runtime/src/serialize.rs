//! `Serialize` (feature `serde`) for what a health endpoint or a log
//! reports: states and causes as their `snake_case` names, durations as
//! the option grammar writes them (`"30s"`), and times as wall-clock RFC
//! 3339 UTC strings, since an `Instant` means nothing outside the process.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::ser::{Serialize, SerializeStruct, Serializer};

use crate::{Health, Metrics, RetryCalls, Snapshot, State, Transition, TransitionCause};

impl Serialize for State {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl Serialize for TransitionCause {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// `instant`, a moment of this process, as the wall-clock time it was, in
/// RFC 3339 UTC with milliseconds: `"2026-11-27T02:41:18.123Z"`.
pub(crate) fn wall_clock(instant: Instant) -> String {
    let now = Instant::now();
    let wall = match now.checked_duration_since(instant) {
        Some(ago) => SystemTime::now().checked_sub(ago),
        None => SystemTime::now().checked_add(instant.duration_since(now)),
    };
    rfc3339(wall.unwrap_or(UNIX_EPOCH))
}

/// A system time in RFC 3339 UTC, to the millisecond.
fn rfc3339(time: SystemTime) -> String {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since_epoch.as_secs();
    let (days, of_day) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60,
        since_epoch.subsec_millis()
    )
}

/// The proleptic Gregorian date of a day counted from 1970-01-01 (Howard
/// Hinnant's `civil_from_days`, for days on or after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

impl Serialize for Metrics {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = serializer.serialize_struct("Metrics", 20)?;
        out.serialize_field("total_calls", &self.total_calls)?;
        out.serialize_field("successful_calls", &self.successful_calls)?;
        out.serialize_field("failed_calls", &self.failed_calls)?;
        out.serialize_field("ignored_calls", &self.ignored_calls)?;
        out.serialize_field("rejected_calls", &self.rejected_calls)?;
        out.serialize_field("bulkhead_rejected", &self.bulkhead_rejected)?;
        out.serialize_field("fallbacks_after_rejection", &self.fallbacks_after_rejection)?;
        out.serialize_field("fallbacks_after_failure", &self.fallbacks_after_failure)?;
        out.serialize_field("retry_attempts", &self.retry_attempts)?;
        out.serialize_field("retry_calls", &self.retry_calls)?;
        out.serialize_field("slow_calls", &self.slow_calls)?;
        out.serialize_field("times_opened", &self.times_opened)?;
        out.serialize_field("times_half_opened", &self.times_half_opened)?;
        out.serialize_field("times_closed", &self.times_closed)?;
        out.serialize_field("consecutive_failures", &self.consecutive_failures)?;
        out.serialize_field("trial_successes", &self.trial_successes)?;
        out.serialize_field("failure_rate", &self.failure_rate)?;
        out.serialize_field("slow_call_rate", &self.slow_call_rate)?;
        out.serialize_field("last_failure_at", &self.last_failure_at.map(wall_clock))?;
        out.serialize_field(
            "last_transition_at",
            &self.last_transition_at.map(wall_clock),
        )?;
        out.end()
    }
}

impl Serialize for RetryCalls {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = serializer.serialize_struct("RetryCalls", 5)?;
        out.serialize_field("successful_without_retry", &self.successful_without_retry)?;
        out.serialize_field("successful_with_retry", &self.successful_with_retry)?;
        out.serialize_field("failed_without_retry", &self.failed_without_retry)?;
        out.serialize_field("failed_with_retry", &self.failed_with_retry)?;
        out.serialize_field("budget_exhausted", &self.budget_exhausted)?;
        out.end()
    }
}

impl Serialize for Snapshot {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = serializer.serialize_struct("Snapshot", 6)?;
        out.serialize_field("name", &self.name)?;
        out.serialize_field("state", &self.state)?;
        out.serialize_field(
            "retry_after",
            &self
                .retry_after
                .map(circuit_spec::duration::format_millis_up),
        )?;
        out.serialize_field("metrics", &self.metrics)?;
        out.serialize_field("config", &self.config)?;
        out.serialize_field("degraded", &self.degraded)?;
        out.end()
    }
}

impl Serialize for Health {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = serializer.serialize_struct("Health", 4)?;
        out.serialize_field("healthy", &self.healthy)?;
        out.serialize_field("open_circuits", &self.open_circuits)?;
        out.serialize_field("degraded_circuits", &self.degraded_circuits)?;
        out.serialize_field("circuits", &self.circuits)?;
        out.end()
    }
}

impl Serialize for Transition {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = serializer.serialize_struct("Transition", 5)?;
        out.serialize_field("breaker", &self.name)?;
        out.serialize_field("from", &self.from)?;
        out.serialize_field("to", &self.to)?;
        out.serialize_field("cause", &self.cause)?;
        out.serialize_field("at", &wall_clock(self.at))?;
        out.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rfc3339_writes_utc_to_the_millisecond() {
        let at = |secs: u64, millis: u64| {
            rfc3339(UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(millis))
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(at(1_795_748_478, 123), "2026-11-27T03:01:18.123Z");
        assert_eq!(at(4_102_444_799, 999), "2099-12-31T23:59:59.999Z");
    }

    #[test]
    fn a_moment_of_the_process_is_the_wall_clock_time_it_was() {
        let written = wall_clock(Instant::now());
        let expected = rfc3339(SystemTime::now());
        assert_eq!(written[..16], expected[..16], "{written} vs {expected}");
    }
}
