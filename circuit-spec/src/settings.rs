//! Sets of options: the ones a source (code, a file section) sets, how
//! sources layer, the rules between options, and the values in force.

use std::time::Duration;

use crate::{Key, Problem, Value, KEY_COUNT};

/// The options one source sets, each at most once; the others are left to
/// lower layers and the defaults.
///
/// ```
/// use circuit_spec::{Key, Settings, Value};
///
/// let mut file = Settings::new();
/// file.set(Key::FailureThreshold, Value::Count(3));
/// let mut code = Settings::new();
/// code.set(Key::FailureThreshold, Value::Count(10));
/// code.set(Key::WindowSize, Value::Count(20));
///
/// let layered = file.layered_over(&code);
/// assert_eq!(layered.get(Key::FailureThreshold), Some(Value::Count(3)));
/// assert_eq!(layered.get(Key::WindowSize), Some(Value::Count(20)));
/// let resolved = layered.resolve().unwrap();
/// assert_eq!(resolved.count(Key::MinimumCalls), 10);
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Settings {
    values: [Option<Value>; KEY_COUNT],
}

impl Settings {
    /// No option set.
    ///
    /// ```
    /// assert!(circuit_spec::Settings::new().is_empty());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` to `value`, returning the value it replaces.
    ///
    /// ```
    /// use circuit_spec::{Key, Settings, Value};
    /// let mut settings = Settings::new();
    /// assert_eq!(settings.set(Key::Jitter, Value::Number(0.1)), None);
    /// assert_eq!(settings.set(Key::Jitter, Value::Number(0.2)), Some(Value::Number(0.1)));
    /// ```
    pub fn set(&mut self, key: Key, value: Value) -> Option<Value> {
        self.values[key as usize].replace(value)
    }

    /// Unsets `key`, returning its value.
    ///
    /// ```
    /// use circuit_spec::{Key, Settings, Value};
    /// let mut settings = Settings::new();
    /// settings.set(Key::Jitter, Value::Number(0.1));
    /// assert_eq!(settings.remove(Key::Jitter), Some(Value::Number(0.1)));
    /// assert!(settings.is_empty());
    /// ```
    pub fn remove(&mut self, key: Key) -> Option<Value> {
        self.values[key as usize].take()
    }

    /// The value `key` is set to, if it is.
    ///
    /// ```
    /// assert_eq!(circuit_spec::Settings::new().get(circuit_spec::Key::Jitter), None);
    /// ```
    pub fn get(&self, key: Key) -> Option<Value> {
        self.values[key as usize]
    }

    /// Whether no option is set.
    ///
    /// ```
    /// assert!(circuit_spec::Settings::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.values.iter().all(Option::is_none)
    }

    /// The options set, in the table's order.
    ///
    /// ```
    /// use circuit_spec::{Key, Settings, Value};
    /// let mut settings = Settings::new();
    /// settings.set(Key::Jitter, Value::Number(0.1));
    /// settings.set(Key::FailureThreshold, Value::Count(2));
    /// let keys: Vec<Key> = settings.iter().map(|(key, _)| key).collect();
    /// assert_eq!(keys, [Key::FailureThreshold, Key::Jitter]);
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = (Key, Value)> + '_ {
        Key::ALL
            .into_iter()
            .filter_map(|key| self.get(key).map(|value| (key, value)))
    }

    /// These settings over `lower`: each option from here if set here,
    /// else from `lower`. The two windows are one choice: setting either
    /// here replaces whichever `lower` chose.
    ///
    /// ```
    /// use std::time::Duration;
    /// use circuit_spec::{Key, Settings, Value};
    /// let mut file = Settings::new();
    /// file.set(Key::WindowDuration, Value::Duration(Duration::from_secs(10)));
    /// let mut code = Settings::new();
    /// code.set(Key::WindowSize, Value::Count(20));
    /// let layered = file.layered_over(&code);
    /// assert_eq!(layered.get(Key::WindowSize), None);
    /// assert!(layered.problems().is_empty());
    /// ```
    #[must_use]
    pub fn layered_over(&self, lower: &Settings) -> Settings {
        let mut layered = lower.clone();
        if self.get(Key::WindowSize).is_some() || self.get(Key::WindowDuration).is_some() {
            layered.remove(Key::WindowSize);
            layered.remove(Key::WindowDuration);
        }
        for (key, value) in self.iter() {
            layered.set(key, value);
        }
        layered
    }

    /// Every mistake: each value outside its range, in the table's order,
    /// then each broken rule between options. A rule is only judged on
    /// values that are in range, so one mistake is reported once.
    ///
    /// ```
    /// use circuit_spec::{Key, Problem, Settings, Value};
    /// let mut settings = Settings::new();
    /// settings.set(Key::SlowCallRateThreshold, Value::Number(1.5));
    /// assert_eq!(settings.problems(), [
    ///     Problem::OutOfRange { key: Key::SlowCallRateThreshold, value: Value::Number(1.5) },
    ///     Problem::SlowCallRateWithoutDuration,
    /// ]);
    /// ```
    pub fn problems(&self) -> Vec<Problem> {
        let mut problems: Vec<Problem> = self
            .iter()
            .filter(|&(key, value)| !key.spec().range.contains(value))
            .map(|(key, value)| Problem::OutOfRange { key, value })
            .collect();
        let valid = |key: Key| self.get(key).filter(|&v| key.spec().range.contains(v));
        if self.get(Key::WindowSize).is_some() && self.get(Key::WindowDuration).is_some() {
            problems.push(Problem::ConflictingWindows);
        }
        if self.get(Key::SlowCallRateThreshold).is_some()
            && self.get(Key::SlowCallDuration).is_none()
        {
            problems.push(Problem::SlowCallRateWithoutDuration);
        }
        if let Some(Value::Count(minimum_calls)) = valid(Key::MinimumCalls) {
            let window = match (valid(Key::WindowSize), self.get(Key::WindowDuration)) {
                (Some(Value::Count(size)), _) => Some((size, false)),
                (None, None) if self.get(Key::WindowSize).is_none() => {
                    Some((default_count(Key::WindowSize), true))
                }
                _ => None,
            };
            if let Some((window_size, window_size_is_default)) = window {
                if minimum_calls > window_size {
                    problems.push(Problem::MinimumCallsExceedWindow {
                        minimum_calls,
                        window_size,
                        window_size_is_default,
                    });
                }
            }
        }
        if let Some(Value::Duration(max_recovery_timeout)) = valid(Key::MaxRecoveryTimeout) {
            let recovery = match (valid(Key::RecoveryTimeout), self.get(Key::RecoveryTimeout)) {
                (Some(Value::Duration(recovery)), _) => Some((recovery, false)),
                (_, None) => Some((default_duration(Key::RecoveryTimeout), true)),
                _ => None,
            };
            if let Some((recovery_timeout, recovery_timeout_is_default)) = recovery {
                if max_recovery_timeout < recovery_timeout {
                    problems.push(Problem::MaxRecoveryTimeoutTooShort {
                        max_recovery_timeout,
                        recovery_timeout,
                        recovery_timeout_is_default,
                    });
                }
            }
        }
        problems
    }

    /// The value of every option in force: each one set here, the others
    /// their defaults. Two defaults follow other options: `minimum_calls`
    /// is 10 or `window_size` when that is smaller, and
    /// `max_recovery_timeout` is 10 minutes or `recovery_timeout` when that
    /// is longer. A time window leaves `window_size` unset.
    ///
    /// # Errors
    ///
    /// Every [problem](Self::problems), when there is one.
    ///
    /// ```
    /// use std::time::Duration;
    /// use circuit_spec::{Key, Settings, Value};
    /// let mut settings = Settings::new();
    /// settings.set(Key::WindowSize, Value::Count(4));
    /// settings.set(Key::RecoveryTimeout, Value::Duration(Duration::from_secs(3600)));
    /// let resolved = settings.resolve().unwrap();
    /// assert_eq!(resolved.count(Key::MinimumCalls), 4);
    /// assert_eq!(resolved.duration(Key::MaxRecoveryTimeout), Some(Duration::from_secs(3600)));
    /// assert_eq!(resolved.number(Key::FailureRateThreshold), None);
    /// ```
    pub fn resolve(&self) -> Result<Resolved, Vec<Problem>> {
        let problems = self.problems();
        if !problems.is_empty() {
            return Err(problems);
        }
        let mut values = [None; KEY_COUNT];
        for key in Key::ALL {
            values[key as usize] = self.get(key).or(key.spec().default);
        }
        let mut resolved = Resolved { values };
        if self.get(Key::WindowDuration).is_some() {
            resolved.values[Key::WindowSize as usize] = None;
        }
        if self.get(Key::MinimumCalls).is_none() {
            if let Some(Value::Count(size)) = resolved.get(Key::WindowSize) {
                let minimum = default_count(Key::MinimumCalls).min(size);
                resolved.values[Key::MinimumCalls as usize] = Some(Value::Count(minimum));
            }
        }
        if self.get(Key::MaxRecoveryTimeout).is_none() {
            let max = default_duration(Key::MaxRecoveryTimeout)
                .max(resolved.duration(Key::RecoveryTimeout).unwrap_or_default());
            resolved.values[Key::MaxRecoveryTimeout as usize] = Some(Value::Duration(max));
        }
        Ok(resolved)
    }
}

fn default_count(key: Key) -> i64 {
    match key.spec().default {
        Some(Value::Count(count)) => count,
        _ => unreachable!("`{key}` has a count default"),
    }
}

fn default_duration(key: Key) -> Duration {
    match key.spec().default {
        Some(Value::Duration(duration)) => duration,
        _ => unreachable!("`{key}` has a duration default"),
    }
}

/// The value of every option in force, checked: what a breaker runs with.
///
/// ```
/// use circuit_spec::{Key, Settings};
/// let defaults = Settings::new().resolve().unwrap();
/// assert_eq!(defaults.count(Key::FailureThreshold), 5);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Resolved {
    values: [Option<Value>; KEY_COUNT],
}

impl Resolved {
    /// The value of `key`; `None` for a rule that is off.
    ///
    /// ```
    /// use circuit_spec::{Key, Settings, Value};
    /// let defaults = Settings::new().resolve().unwrap();
    /// assert_eq!(defaults.get(Key::Jitter), Some(Value::Number(0.0)));
    /// ```
    pub fn get(&self, key: Key) -> Option<Value> {
        self.values[key as usize]
    }

    /// A count option's value, 0 when it is off (`window_size` under a
    /// time window, `max_concurrent_calls` when calls are not limited).
    ///
    /// ```
    /// use circuit_spec::{Key, Settings};
    /// assert_eq!(Settings::new().resolve().unwrap().count(Key::WindowSize), 10);
    /// ```
    pub fn count(&self, key: Key) -> u32 {
        match self.get(key) {
            Some(Value::Count(count)) => u32::try_from(count).unwrap_or(u32::MAX),
            _ => 0,
        }
    }

    /// A number option's value, if its rule is on.
    ///
    /// ```
    /// use circuit_spec::{Key, Settings};
    /// assert_eq!(Settings::new().resolve().unwrap().number(Key::RecoveryBackoff), Some(1.0));
    /// ```
    pub fn number(&self, key: Key) -> Option<f64> {
        match self.get(key) {
            Some(Value::Number(number)) => Some(number),
            _ => None,
        }
    }

    /// A duration option's value, if its rule is on.
    ///
    /// ```
    /// use circuit_spec::{Key, Settings};
    /// assert_eq!(Settings::new().resolve().unwrap().duration(Key::SlowCallDuration), None);
    /// ```
    pub fn duration(&self, key: Key) -> Option<Duration> {
        match self.get(key) {
            Some(Value::Duration(duration)) => Some(duration),
            _ => None,
        }
    }

    /// The options whose values differ between `self` and `other`, in the
    /// table's order.
    ///
    /// ```
    /// use circuit_spec::{Key, Settings, Value};
    /// let mut strict = Settings::new();
    /// strict.set(Key::FailureThreshold, Value::Count(1));
    /// let (a, b) = (Settings::new().resolve().unwrap(), strict.resolve().unwrap());
    /// assert_eq!(a.differences(&b), [Key::FailureThreshold]);
    /// ```
    pub fn differences(&self, other: &Resolved) -> Vec<Key> {
        Key::ALL
            .into_iter()
            .filter(|&key| self.get(key) != other.get(key))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(Key, Value)]) -> Settings {
        let mut settings = Settings::new();
        for &(key, value) in pairs {
            settings.set(key, value);
        }
        settings
    }

    #[test]
    fn a_rule_is_not_judged_on_a_value_out_of_range() {
        let problems = settings(&[
            (Key::WindowSize, Value::Count(0)),
            (Key::MinimumCalls, Value::Count(5)),
        ])
        .problems();
        assert_eq!(
            problems,
            [Problem::OutOfRange {
                key: Key::WindowSize,
                value: Value::Count(0)
            }]
        );
    }

    #[test]
    fn minimum_calls_is_checked_against_the_default_window() {
        let problems = settings(&[(Key::MinimumCalls, Value::Count(20))]).problems();
        assert_eq!(
            problems,
            [Problem::MinimumCallsExceedWindow {
                minimum_calls: 20,
                window_size: 10,
                window_size_is_default: true
            }]
        );
        let time_window = settings(&[
            (Key::MinimumCalls, Value::Count(20)),
            (Key::WindowDuration, Value::Duration(Duration::from_secs(1))),
        ]);
        assert!(time_window.problems().is_empty());
    }

    #[test]
    fn max_recovery_timeout_is_checked_against_the_default_recovery_timeout() {
        let problems = settings(&[(
            Key::MaxRecoveryTimeout,
            Value::Duration(Duration::from_secs(30)),
        )])
        .problems();
        assert_eq!(
            problems[0].to_string(),
            "`max_recovery_timeout` (30s) must be at least `recovery_timeout` (1m, the \
             default): backoff only ever lengthens the open time"
        );
    }

    #[test]
    fn every_mistake_is_reported_at_once() {
        let problems = settings(&[
            (Key::FailureThreshold, Value::Count(0)),
            (Key::Jitter, Value::Number(2.0)),
            (Key::WindowSize, Value::Count(5)),
            (Key::WindowDuration, Value::Duration(Duration::from_secs(5))),
        ])
        .problems();
        assert_eq!(problems.len(), 3, "{problems:?}");
    }

    #[test]
    fn resolved_defaults_follow_their_options() {
        let resolved = settings(&[(Key::WindowSize, Value::Count(3))])
            .resolve()
            .unwrap();
        assert_eq!(resolved.count(Key::MinimumCalls), 3);
        let resolved = settings(&[(Key::WindowDuration, Value::Duration(Duration::from_secs(3)))])
            .resolve()
            .unwrap();
        assert_eq!(resolved.get(Key::WindowSize), None);
        assert_eq!(resolved.count(Key::MinimumCalls), 10);
    }
}
