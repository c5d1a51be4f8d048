//! Every `ConfigError` the builder can return, its message, and the
//! documented defaults.

use std::time::Duration;

use circuit_runtime::{
    CircuitBreaker, Config, ConfigBuilder, ConfigError, ManualClock, MAX_TRIAL_CALLS,
    MAX_WINDOW_SIZE,
};

/// Builds, expects an out-of-range error for `option`, and checks that the
/// message names the option and the allowed range.
fn assert_out_of_range(builder: ConfigBuilder, option: &str, expected: &str, value: &str) {
    let err = builder
        .build()
        .expect_err(&format!("`{option}` = {value} must be rejected"));
    match &err {
        ConfigError::OutOfRange {
            option: got_option,
            expected: got_expected,
            value: got_value,
        } => {
            assert_eq!(
                (*got_option, *got_expected, got_value.as_str()),
                (option, expected, value)
            );
        }
        other => panic!("expected OutOfRange for `{option}`, got {other:?}"),
    }
    let message = err.to_string();
    assert!(
        message.contains(&format!("`{option}`")),
        "{message:?} names the option"
    );
    assert!(message.contains(expected), "{message:?} gives the range");
    assert_eq!(
        message,
        format!("`{option}` must be {expected}, got {value}")
    );
}

fn assert_valid(builder: ConfigBuilder) -> Config {
    builder.build().expect("a valid configuration")
}

// --- Counts ------------------------------------------------------------------

#[test]
fn failure_threshold_must_be_at_least_one() {
    assert_out_of_range(
        Config::builder().failure_threshold(0),
        "failure_threshold",
        "at least 1",
        "0",
    );
    assert_valid(Config::builder().failure_threshold(1));
    assert_valid(Config::builder().failure_threshold(u32::MAX));
}

#[test]
fn success_threshold_must_be_between_one_and_max_trial_calls() {
    let range = "between 1 and 65535";
    assert_out_of_range(
        Config::builder().success_threshold(0),
        "success_threshold",
        range,
        "0",
    );
    assert_out_of_range(
        Config::builder().success_threshold(MAX_TRIAL_CALLS + 1),
        "success_threshold",
        range,
        "65536",
    );
    assert_valid(Config::builder().success_threshold(1));
    assert_valid(Config::builder().success_threshold(MAX_TRIAL_CALLS));
}

#[test]
fn half_open_max_calls_must_be_between_one_and_max_trial_calls() {
    let range = "between 1 and 65535";
    assert_out_of_range(
        Config::builder().half_open_max_calls(0),
        "half_open_max_calls",
        range,
        "0",
    );
    assert_out_of_range(
        Config::builder().half_open_max_calls(u32::MAX),
        "half_open_max_calls",
        range,
        &u32::MAX.to_string(),
    );
    assert_valid(Config::builder().half_open_max_calls(MAX_TRIAL_CALLS));
}

#[test]
fn window_size_must_be_between_one_and_max_window_size() {
    let range = "between 1 and 1000000";
    assert_out_of_range(Config::builder().window_size(0), "window_size", range, "0");
    assert_out_of_range(
        Config::builder().window_size(MAX_WINDOW_SIZE + 1),
        "window_size",
        range,
        "1000001",
    );
    assert_valid(Config::builder().window_size(1).minimum_calls(1));
    assert_valid(Config::builder().window_size(MAX_WINDOW_SIZE));
}

#[test]
fn minimum_calls_must_be_at_least_one() {
    assert_out_of_range(
        Config::builder().minimum_calls(0),
        "minimum_calls",
        "at least 1",
        "0",
    );
    assert_out_of_range(
        Config::builder()
            .window_duration(Duration::from_secs(1))
            .minimum_calls(0),
        "minimum_calls",
        "at least 1",
        "0",
    );
}

#[test]
fn minimum_calls_may_not_exceed_a_count_window() {
    let err = Config::builder()
        .window_size(20)
        .minimum_calls(21)
        .build()
        .unwrap_err();
    assert_eq!(
        err,
        ConfigError::MinimumCallsExceedWindow {
            minimum_calls: 21,
            window_size: 20,
        }
    );
    let message = err.to_string();
    assert!(message.contains("`minimum_calls` (21)"), "{message}");
    assert!(message.contains("at most `window_size` (20)"), "{message}");

    assert_valid(Config::builder().window_size(20).minimum_calls(20));
    assert!(
        Config::builder().minimum_calls(11).build().is_err(),
        "the default count window holds 10"
    );
}

#[test]
fn minimum_calls_is_unbounded_for_a_time_window() {
    let config = assert_valid(
        Config::builder()
            .window_duration(Duration::from_secs(1))
            .minimum_calls(1_000_000_000),
    );
    assert_eq!(config.minimum_calls(), 1_000_000_000);
}

// --- Durations ---------------------------------------------------------------

#[test]
fn durations_must_be_greater_than_zero() {
    type Setter = fn(ConfigBuilder, Duration) -> ConfigBuilder;
    let options: [(&str, Setter); 4] = [
        ("recovery_timeout", ConfigBuilder::recovery_timeout),
        ("half_open_timeout", ConfigBuilder::half_open_timeout),
        ("window_duration", ConfigBuilder::window_duration),
        ("slow_call_duration", ConfigBuilder::slow_call_duration),
    ];
    for (option, set) in options {
        assert_out_of_range(
            set(Config::builder(), Duration::ZERO),
            option,
            "greater than zero",
            "0s",
        );
        assert_valid(set(Config::builder(), Duration::from_nanos(1)));
    }
}

#[test]
fn max_recovery_timeout_may_not_be_below_recovery_timeout() {
    let err = Config::builder()
        .recovery_timeout(Duration::from_secs(30))
        .max_recovery_timeout(Duration::from_secs(29))
        .build()
        .unwrap_err();
    assert_eq!(
        err,
        ConfigError::MaxRecoveryTimeoutTooShort {
            max_recovery_timeout: Duration::from_secs(29),
            recovery_timeout: Duration::from_secs(30),
        }
    );
    assert_eq!(
        err.to_string(),
        "`max_recovery_timeout` (29s) must be at least `recovery_timeout` (30s)"
    );
    assert!(Config::builder()
        .max_recovery_timeout(Duration::ZERO)
        .build()
        .is_err());
    assert_valid(
        Config::builder()
            .recovery_timeout(Duration::from_secs(30))
            .max_recovery_timeout(Duration::from_secs(30)),
    );
}

#[test]
fn a_long_recovery_timeout_raises_the_default_cap() {
    let config = assert_valid(Config::builder().recovery_timeout(Duration::from_secs(3600)));
    assert_eq!(config.max_recovery_timeout(), Duration::from_secs(3600));
}

// --- Rates and factors -------------------------------------------------------

#[test]
fn rates_must_be_greater_than_zero_and_at_most_one() {
    let range = "greater than 0 and at most 1";
    let slow = Duration::from_secs(1);
    for (rate, shown) in [
        (0.0, "0"),
        (-0.5, "-0.5"),
        (1.000_001, "1.000001"),
        (f64::NAN, "NaN"),
        (f64::INFINITY, "inf"),
    ] {
        assert_out_of_range(
            Config::builder().failure_rate_threshold(rate),
            "failure_rate_threshold",
            range,
            shown,
        );
        assert_out_of_range(
            Config::builder()
                .slow_call_duration(slow)
                .slow_call_rate_threshold(rate),
            "slow_call_rate_threshold",
            range,
            shown,
        );
    }
    for rate in [f64::MIN_POSITIVE, 0.5, 1.0] {
        assert_valid(Config::builder().failure_rate_threshold(rate));
        assert_valid(
            Config::builder()
                .slow_call_duration(slow)
                .slow_call_rate_threshold(rate),
        );
    }
}

#[test]
fn slow_call_rate_threshold_needs_slow_call_duration() {
    let err = Config::builder()
        .slow_call_rate_threshold(0.5)
        .build()
        .unwrap_err();
    assert_eq!(err, ConfigError::SlowCallRateWithoutDuration);
    let message = err.to_string();
    assert!(message.contains("`slow_call_rate_threshold`"), "{message}");
    assert!(message.contains("`slow_call_duration`"), "{message}");
    assert_valid(Config::builder().slow_call_duration(Duration::from_secs(1)));
}

#[test]
fn recovery_backoff_must_be_at_least_one() {
    for (backoff, shown) in [
        (0.999, "0.999"),
        (0.0, "0"),
        (-2.0, "-2"),
        (f64::NAN, "NaN"),
        (f64::INFINITY, "inf"),
    ] {
        assert_out_of_range(
            Config::builder().recovery_backoff(backoff),
            "recovery_backoff",
            "at least 1.0",
            shown,
        );
    }
    assert_valid(Config::builder().recovery_backoff(1.0));
    assert_valid(Config::builder().recovery_backoff(10.0));
}

#[test]
fn jitter_must_be_between_zero_and_one() {
    for (jitter, shown) in [
        (-0.1, "-0.1"),
        (1.5, "1.5"),
        (f64::NAN, "NaN"),
        (f64::INFINITY, "inf"),
    ] {
        assert_out_of_range(
            Config::builder().jitter(jitter),
            "jitter",
            "between 0 and 1",
            shown,
        );
    }
    assert_valid(Config::builder().jitter(0.0));
    assert_valid(Config::builder().jitter(1.0));
}

// --- Windows -----------------------------------------------------------------

#[test]
fn both_window_kinds_conflict() {
    let err = Config::builder()
        .window_size(10)
        .window_duration(Duration::from_secs(10))
        .build()
        .unwrap_err();
    assert_eq!(err, ConfigError::ConflictingWindows);
    let message = err.to_string();
    assert!(message.contains("`window_size`"), "{message}");
    assert!(message.contains("`window_duration`"), "{message}");
}

#[test]
fn a_time_window_replaces_the_count_window() {
    let config = assert_valid(Config::builder().window_duration(Duration::from_secs(30)));
    assert_eq!(config.window_duration(), Some(Duration::from_secs(30)));
    assert_eq!(config.window_size(), None);
    assert_eq!(config.minimum_calls(), 10);
}

#[test]
fn a_small_count_window_lowers_the_default_minimum_calls() {
    let config = assert_valid(Config::builder().window_size(4));
    assert_eq!(config.window_size(), Some(4));
    assert_eq!(config.minimum_calls(), 4);
}

// --- Defaults ----------------------------------------------------------------

#[test]
fn defaults_are_the_documented_ones() {
    for config in [Config::default(), Config::builder().build().unwrap()] {
        assert_eq!(config.failure_threshold(), 5);
        assert_eq!(config.success_threshold(), 1);
        assert_eq!(config.half_open_max_calls(), 1);
        assert_eq!(config.recovery_timeout(), Duration::from_secs(60));
        assert_eq!(config.failure_rate_threshold(), None);
        assert_eq!(config.window_size(), Some(10));
        assert_eq!(config.window_duration(), None);
        assert_eq!(config.minimum_calls(), 10);
        assert_eq!(config.slow_call_duration(), None);
        assert_eq!(config.slow_call_rate_threshold(), None);
        assert!((config.recovery_backoff() - 1.0).abs() < f64::EPSILON);
        assert_eq!(config.max_recovery_timeout(), Duration::from_secs(600));
        assert!(config.jitter().abs() < f64::EPSILON);
        assert_eq!(config.half_open_timeout(), Duration::from_secs(60));
        assert_eq!(config.manual_clock(), None);
    }
    assert_eq!(Config::default(), Config::builder().build().unwrap());
}

#[test]
fn builder_methods_set_the_options_of_the_same_name() {
    let clock = ManualClock::new();
    let config = assert_valid(
        Config::builder()
            .failure_threshold(3)
            .success_threshold(2)
            .half_open_max_calls(4)
            .recovery_timeout(Duration::from_secs(5))
            .failure_rate_threshold(0.25)
            .window_size(50)
            .minimum_calls(20)
            .slow_call_duration(Duration::from_millis(250))
            .slow_call_rate_threshold(0.75)
            .recovery_backoff(1.5)
            .max_recovery_timeout(Duration::from_secs(120))
            .jitter(0.125)
            .half_open_timeout(Duration::from_secs(7))
            .clock(clock.clone()),
    );
    assert_eq!(config.failure_threshold(), 3);
    assert_eq!(config.success_threshold(), 2);
    assert_eq!(config.half_open_max_calls(), 4);
    assert_eq!(config.recovery_timeout(), Duration::from_secs(5));
    assert_eq!(config.failure_rate_threshold(), Some(0.25));
    assert_eq!(config.window_size(), Some(50));
    assert_eq!(config.minimum_calls(), 20);
    assert_eq!(
        config.slow_call_duration(),
        Some(Duration::from_millis(250))
    );
    assert_eq!(config.slow_call_rate_threshold(), Some(0.75));
    assert!((config.recovery_backoff() - 1.5).abs() < f64::EPSILON);
    assert_eq!(config.max_recovery_timeout(), Duration::from_secs(120));
    assert!((config.jitter() - 0.125).abs() < f64::EPSILON);
    assert_eq!(config.half_open_timeout(), Duration::from_secs(7));
    assert_eq!(config.manual_clock(), Some(&clock));

    let breaker = CircuitBreaker::new("configured", config.clone());
    assert_eq!(breaker.config(), config);
}

// --- The manual clock ----------------------------------------------------------

#[test]
fn manual_clock_clones_share_one_time() {
    let clock = ManualClock::new();
    let clone = clock.clone();
    let start = clock.now();
    assert_eq!(clock.now(), start, "it stands still");
    clone.advance(Duration::from_millis(1500));
    assert_eq!(clock.now() - start, Duration::from_millis(1500));
    assert_eq!(clone.now(), clock.now());
    assert_ne!(ManualClock::new(), clock, "a new clock is another clock");
}

#[test]
fn a_breaker_reads_its_manual_clock() {
    let clock = ManualClock::new();
    let breaker = CircuitBreaker::new(
        "clocked",
        Config::builder().clock(clock.clone()).build().unwrap(),
    );
    assert_eq!(breaker.now(), clock.now());
    clock.advance(Duration::from_secs(90));
    assert_eq!(breaker.now(), clock.now());
}

#[test]
fn advancing_the_manual_clock_by_duration_max_moves_it_forward() {
    let clock = ManualClock::new();
    let breaker = CircuitBreaker::new(
        "far-future",
        Config::builder()
            .failure_threshold(1)
            .clock(clock.clone())
            .build()
            .unwrap(),
    );
    clock.advance(Duration::from_secs(1));
    breaker.record_failure();
    let before = clock.now();
    clock.advance(Duration::MAX);
    assert!(clock.now() > before, "time never goes back");
    clock.advance(Duration::MAX);
    assert!(clock.now() > before, "and saturates instead of wrapping");
    let trial = breaker
        .try_acquire()
        .expect("past every timeout, the breaker lets a trial through");
    assert_eq!(trial.admitted_in(), circuit_runtime::State::HalfOpen);
}
