//! The state machine through the public API: every transition, and the
//! rules of the state diagram in the README, one section per state or
//! concern. Time only moves through a `ManualClock`; nothing here sleeps.

// Times here are constants of seconds or milliseconds, one nanosecond
// short of a boundary: the subtractions cannot underflow.
#![allow(clippy::unchecked_time_subtraction)]

mod common;

use std::cell::Cell;
use std::time::Duration;

use circuit_runtime::{
    CallError, CircuitBreaker, CircuitOpenError, Config, ConfigBuilder, ManualClock, State,
};

const NS: Duration = Duration::from_nanos(1);

/// A breaker on a fresh manual clock, and a handle to that clock.
fn breaker(builder: ConfigBuilder) -> (CircuitBreaker, ManualClock) {
    common::manual_breaker("dependency", builder)
}

fn succeed(breaker: &CircuitBreaker) -> Result<(), CallError<&'static str>> {
    breaker.call(|| Ok(()))
}

fn fail(breaker: &CircuitBreaker) -> Result<(), CallError<&'static str>> {
    breaker.call(|| Err("connection refused"))
}

/// A call whose error the classifier says is not a failure.
fn ignored(breaker: &CircuitBreaker) -> Result<(), CallError<&'static str>> {
    breaker.call_with(|_| false, || Err("not found"))
}

/// A successful call that takes `duration` on the breaker's manual clock.
fn slow(breaker: &CircuitBreaker, clock: &ManualClock, duration: Duration) {
    breaker
        .call(|| {
            clock.advance(duration);
            Ok::<_, &str>(())
        })
        .expect("the call runs and succeeds");
}

fn rejection(result: Result<(), CallError<&'static str>>) -> CircuitOpenError {
    match result {
        Err(CallError::Rejected(rejection)) => rejection,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

/// Trips a breaker whose `failure_threshold` is 1.
fn trip(breaker: &CircuitBreaker) {
    assert!(matches!(fail(breaker), Err(CallError::Failed(_))));
    assert_eq!(breaker.state(), State::Open);
}

// --- Display -----------------------------------------------------------------

#[test]
fn states_display_in_snake_case() {
    let names = [
        (State::Closed, "closed"),
        (State::Open, "open"),
        (State::HalfOpen, "half_open"),
        (State::ForcedOpen, "forced_open"),
        (State::Disabled, "disabled"),
    ];
    for (state, name) in names {
        assert_eq!(state.to_string(), name);
    }
}

// --- Closed --------------------------------------------------------------------

#[test]
fn closed_breaker_runs_every_call_and_returns_its_result() {
    let (breaker, _clock) = breaker(Config::builder().failure_threshold(3));
    assert_eq!(breaker.call(|| Ok::<_, &str>(7)), Ok(7));
    assert_eq!(fail(&breaker), Err(CallError::Failed("connection refused")));
    assert_eq!(breaker.state(), State::Closed);
}

#[test]
fn consecutive_failures_trip_at_failure_threshold() {
    let (breaker, _clock) = breaker(Config::builder().failure_threshold(3));
    for expected in 1..=2 {
        assert!(matches!(fail(&breaker), Err(CallError::Failed(_))));
        assert_eq!(breaker.state(), State::Closed);
        assert_eq!(breaker.metrics().consecutive_failures, expected);
    }
    assert!(matches!(fail(&breaker), Err(CallError::Failed(_))));
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(breaker.metrics().times_opened, 1);
}

#[test]
fn success_resets_the_consecutive_failure_count() {
    let (breaker, _clock) = breaker(Config::builder().failure_threshold(3));
    let _ = fail(&breaker);
    let _ = fail(&breaker);
    succeed(&breaker).unwrap();
    assert_eq!(breaker.metrics().consecutive_failures, 0);
    let _ = fail(&breaker);
    let _ = fail(&breaker);
    assert_eq!(
        breaker.state(),
        State::Closed,
        "the count restarted at the success"
    );
    let _ = fail(&breaker);
    assert_eq!(breaker.state(), State::Open);
}

#[test]
fn ignored_outcomes_neither_reset_nor_add_to_consecutive_failures() {
    let (breaker, _clock) = breaker(Config::builder().failure_threshold(2));
    let _ = fail(&breaker);
    for _ in 0..5 {
        assert!(matches!(
            ignored(&breaker),
            Err(CallError::Failed("not found"))
        ));
        assert_eq!(
            breaker.state(),
            State::Closed,
            "an ignored error is no failure"
        );
    }
    assert_eq!(breaker.metrics().consecutive_failures, 1, "nor a success");
    let _ = fail(&breaker);
    assert_eq!(breaker.state(), State::Open);
}

#[test]
fn ignored_outcomes_do_not_enter_the_rate_window() {
    let (breaker, _clock) = breaker(
        Config::builder()
            .failure_threshold(100)
            .failure_rate_threshold(0.5)
            .window_size(4)
            .minimum_calls(3),
    );
    let _ = fail(&breaker);
    succeed(&breaker).unwrap();
    for _ in 0..10 {
        let _ = ignored(&breaker);
    }
    assert_eq!(
        breaker.metrics().failure_rate,
        Some(0.5),
        "the window holds the failure and the success only"
    );
    assert_eq!(
        breaker.state(),
        State::Closed,
        "two outcomes are below minimum_calls, however many calls were ignored"
    );
}

#[test]
fn failure_rate_trips_a_count_window_only_once_minimum_calls_are_held() {
    let (breaker, _clock) = breaker(
        Config::builder()
            .failure_threshold(100)
            .failure_rate_threshold(0.5)
            .window_size(10)
            .minimum_calls(4),
    );
    let _ = fail(&breaker);
    let _ = fail(&breaker);
    let _ = fail(&breaker);
    assert_eq!(breaker.metrics().failure_rate, Some(1.0));
    assert_eq!(
        breaker.state(),
        State::Closed,
        "a 100% failure rate over 3 outcomes is below minimum_calls"
    );
    // The fourth outcome is a success, and the rate (3/4) trips the breaker:
    // it is the rate rule that fires, not the consecutive count.
    succeed(&breaker).unwrap();
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(breaker.metrics().times_opened, 1);
}

#[test]
fn failure_rate_at_exactly_the_threshold_trips() {
    let (breaker, _clock) = breaker(
        Config::builder()
            .failure_threshold(100)
            .failure_rate_threshold(0.5)
            .window_size(4)
            .minimum_calls(4),
    );
    let _ = fail(&breaker);
    succeed(&breaker).unwrap();
    succeed(&breaker).unwrap();
    assert_eq!(breaker.state(), State::Closed);
    let _ = fail(&breaker);
    assert_eq!(breaker.state(), State::Open, "2 failures in 4 reach 0.5");
}

#[test]
fn count_window_holds_only_the_last_window_size_outcomes() {
    let (breaker, _clock) = breaker(
        Config::builder()
            .failure_threshold(100)
            .failure_rate_threshold(0.75)
            .window_size(4)
            .minimum_calls(4),
    );
    let _ = fail(&breaker);
    let _ = fail(&breaker);
    succeed(&breaker).unwrap();
    succeed(&breaker).unwrap();
    assert_eq!(breaker.metrics().failure_rate, Some(0.5));
    succeed(&breaker).unwrap();
    succeed(&breaker).unwrap();
    assert_eq!(
        breaker.metrics().failure_rate,
        Some(0.0),
        "the two failures slid out of the window"
    );
    let _ = fail(&breaker);
    let _ = fail(&breaker);
    assert_eq!(breaker.state(), State::Closed, "S S F F is a rate of 0.5");
    let _ = fail(&breaker);
    assert_eq!(breaker.state(), State::Open, "S F F F is a rate of 0.75");
}

#[test]
fn failure_rate_trips_a_time_window_once_minimum_calls_are_held() {
    let (breaker, clock) = breaker(
        Config::builder()
            .failure_threshold(100)
            .failure_rate_threshold(0.5)
            .window_duration(Duration::from_secs(10))
            .minimum_calls(4),
    );
    let _ = fail(&breaker);
    clock.advance(Duration::from_secs(2));
    let _ = fail(&breaker);
    clock.advance(Duration::from_secs(2));
    let _ = fail(&breaker);
    assert_eq!(breaker.state(), State::Closed, "3 outcomes < minimum_calls");
    clock.advance(Duration::from_secs(2));
    succeed(&breaker).unwrap();
    assert_eq!(breaker.state(), State::Open, "3 failures in 4 within 10s");
}

#[test]
fn time_window_forgets_outcomes_older_than_window_duration() {
    let (breaker, clock) = breaker(
        Config::builder()
            .failure_threshold(100)
            .failure_rate_threshold(0.5)
            .window_duration(Duration::from_secs(10))
            .minimum_calls(3),
    );
    let _ = fail(&breaker);
    let _ = fail(&breaker);
    assert_eq!(breaker.metrics().failure_rate, Some(1.0));
    clock.advance(Duration::from_secs(10));
    assert_eq!(
        breaker.metrics().failure_rate,
        None,
        "both failures are a full window_duration old"
    );
    // Had the two old failures still counted, this would be 3 outcomes with a
    // failure rate of 2/3 and the breaker would trip.
    succeed(&breaker).unwrap();
    let _ = fail(&breaker);
    assert_eq!(breaker.metrics().failure_rate, Some(0.5));
    assert_eq!(breaker.state(), State::Closed, "2 outcomes < minimum_calls");
    succeed(&breaker).unwrap();
    succeed(&breaker).unwrap();
    assert_eq!(
        breaker.state(),
        State::Closed,
        "1 failure in 4 is below 0.5"
    );
}

#[test]
fn time_window_keeps_outcomes_well_inside_window_duration() {
    let (breaker, clock) = breaker(
        Config::builder()
            .failure_threshold(100)
            .failure_rate_threshold(0.5)
            .window_duration(Duration::from_secs(10))
            .minimum_calls(2),
    );
    let _ = fail(&breaker);
    clock.advance(Duration::from_secs(5));
    assert_eq!(breaker.metrics().failure_rate, Some(1.0));
    succeed(&breaker).unwrap();
    assert_eq!(
        breaker.state(),
        State::Open,
        "the 5s-old failure still counts"
    );
}

#[test]
fn slow_call_rate_trips_the_breaker() {
    let slow_call = Duration::from_secs(1);
    let (breaker, clock) = breaker(
        Config::builder()
            .failure_threshold(100)
            .slow_call_duration(slow_call)
            .slow_call_rate_threshold(0.5)
            .window_size(4)
            .minimum_calls(4),
    );
    slow(&breaker, &clock, slow_call);
    slow(&breaker, &clock, slow_call - NS);
    slow(&breaker, &clock, slow_call * 3);
    assert_eq!(
        breaker.metrics().slow_calls,
        2,
        "at least slow_call_duration is slow"
    );
    assert_eq!(breaker.state(), State::Closed, "3 outcomes < minimum_calls");
    slow(&breaker, &clock, Duration::ZERO);
    assert_eq!(breaker.state(), State::Open, "2 slow calls in 4 reach 0.5");
    let metrics = breaker.metrics();
    assert_eq!(metrics.failed_calls, 0, "every call succeeded, slowly");
    assert_eq!(metrics.times_opened, 1);
}

#[test]
fn fast_calls_never_trip_the_slow_call_rule() {
    let slow_call = Duration::from_secs(1);
    let (breaker, clock) = breaker(
        Config::builder()
            .slow_call_duration(slow_call)
            .slow_call_rate_threshold(0.1)
            .window_size(4)
            .minimum_calls(1),
    );
    for _ in 0..20 {
        slow(&breaker, &clock, slow_call - NS);
    }
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(breaker.metrics().slow_calls, 0);
}

// --- Open ----------------------------------------------------------------------

#[test]
fn open_rejects_without_running_the_call_and_says_when_to_retry() {
    let (breaker, clock) = breaker(
        Config::builder()
            .failure_threshold(1)
            .recovery_timeout(Duration::from_secs(30)),
    );
    trip(&breaker);

    let ran = Cell::new(false);
    let result = breaker.call(|| {
        ran.set(true);
        Ok::<_, &str>(())
    });
    assert!(!ran.get(), "an open breaker does not run the call");
    let rejection = rejection(result);
    assert_eq!(rejection.name(), "dependency");
    assert_eq!(rejection.state(), State::Open);
    assert_eq!(rejection.retry_after(), Some(Duration::from_secs(30)));
    assert_eq!(
        rejection.to_string(),
        "circuit breaker 'dependency' is open; retry in 30.0s"
    );

    clock.advance(Duration::from_secs(12));
    let rejection = breaker.try_acquire().unwrap_err();
    assert_eq!(rejection.retry_after(), Some(Duration::from_secs(18)));
    assert_eq!(breaker.metrics().rejected_calls, 2);
}

#[test]
fn rejections_and_breakers_cross_threads() {
    fn error<T: std::error::Error + Clone + Send + Sync + 'static>() {}
    fn shared<T: Send + Sync>() {}
    error::<CircuitOpenError>();
    shared::<CircuitBreaker>();

    let (breaker, _clock) = breaker(Config::builder());
    breaker.force_open();
    let rejection = breaker.try_acquire().unwrap_err();
    let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(rejection.clone());
    let from_thread = std::thread::spawn(move || boxed.to_string())
        .join()
        .unwrap();
    assert_eq!(from_thread, rejection.to_string());
}

#[test]
fn open_moves_to_half_open_exactly_when_recovery_timeout_has_elapsed() {
    let timeout = Duration::from_secs(30);
    let (breaker, clock) = breaker(
        Config::builder()
            .failure_threshold(1)
            .recovery_timeout(timeout),
    );
    trip(&breaker);

    clock.advance(timeout - NS);
    let rejection = breaker.try_acquire().unwrap_err();
    assert_eq!(rejection.state(), State::Open);
    assert_eq!(rejection.retry_after(), Some(NS), "1ns before the timeout");
    assert_eq!(breaker.state(), State::Open);

    clock.advance(NS);
    let permit = breaker
        .try_acquire()
        .expect("elapsed == recovery_timeout admits a trial");
    assert_eq!(permit.admitted_in(), State::HalfOpen);
    assert_eq!(breaker.state(), State::HalfOpen);
    assert_eq!(breaker.metrics().times_half_opened, 1);
    permit.record_success();
    assert_eq!(breaker.state(), State::Closed);
}

#[test]
fn open_breaker_moves_on_a_call_not_on_a_timer_nor_on_a_read() {
    let (breaker, clock) = breaker(
        Config::builder()
            .failure_threshold(1)
            .recovery_timeout(Duration::from_secs(1)),
    );
    trip(&breaker);
    clock.advance(Duration::from_secs(3600));
    assert_eq!(
        breaker.state(),
        State::HalfOpen,
        "reads as the trial the next call would be"
    );
    assert_eq!(
        breaker.metrics().times_half_opened,
        0,
        "nothing moved it yet"
    );
    succeed(&breaker).unwrap();
    assert_eq!(breaker.state(), State::Closed, "the call was the trial");
    assert_eq!(breaker.metrics().times_half_opened, 1);
}

// --- HalfOpen ------------------------------------------------------------------

/// A breaker that is half-open as of the returned state (its recovery
/// timeout has elapsed; the next call moves it).
fn ready_for_trials(builder: ConfigBuilder) -> (CircuitBreaker, ManualClock) {
    let (breaker, clock) = breaker(
        builder
            .failure_threshold(1)
            .recovery_timeout(Duration::from_secs(10)),
    );
    trip(&breaker);
    clock.advance(Duration::from_secs(10));
    (breaker, clock)
}

#[test]
fn half_open_admits_at_most_max_calls() {
    let (breaker, _clock) = ready_for_trials(Config::builder().half_open_max_calls(2));
    let first = breaker.try_acquire().unwrap();
    let second = breaker.try_acquire().unwrap();
    assert_eq!(breaker.state(), State::HalfOpen);

    let ran = Cell::new(false);
    let rejection = rejection(breaker.call(|| {
        ran.set(true);
        Ok(())
    }));
    assert!(!ran.get());
    assert_eq!(rejection.state(), State::HalfOpen);
    assert_eq!(rejection.retry_after(), None);
    assert_eq!(
        rejection.to_string(),
        "circuit breaker 'dependency' is half-open and every trial slot is taken"
    );

    first.record_ignored();
    let third = breaker
        .try_acquire()
        .expect("an ignored trial gives its slot back");
    assert!(breaker.try_acquire().is_err());
    second.record_success();
    assert_eq!(breaker.state(), State::Closed);
    third.record_success();
    assert_eq!(breaker.state(), State::Closed);
}

#[test]
fn success_threshold_trial_successes_close_the_breaker() {
    let (breaker, _clock) = ready_for_trials(Config::builder().success_threshold(3));
    for _ in 0..2 {
        succeed(&breaker).unwrap();
        assert_eq!(breaker.state(), State::HalfOpen);
    }
    succeed(&breaker).unwrap();
    assert_eq!(breaker.state(), State::Closed);
    let metrics = breaker.metrics();
    assert_eq!(metrics.times_closed, 1);
    assert_eq!(metrics.consecutive_failures, 0);
}

#[test]
fn closing_clears_the_window() {
    let (breaker, clock) = breaker(
        Config::builder()
            .failure_threshold(100)
            .failure_rate_threshold(0.6)
            .window_size(4)
            .minimum_calls(3)
            .recovery_timeout(Duration::from_secs(10)),
    );
    let _ = fail(&breaker);
    let _ = fail(&breaker);
    let _ = fail(&breaker);
    assert_eq!(breaker.state(), State::Open);
    clock.advance(Duration::from_secs(10));
    succeed(&breaker).unwrap();
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(breaker.metrics().failure_rate, None, "the window is empty");

    // With the three old failures still held, the first success would make
    // F F F S (3/4) and trip the breaker.
    succeed(&breaker).unwrap();
    let _ = fail(&breaker);
    succeed(&breaker).unwrap();
    assert_eq!(breaker.metrics().failure_rate, Some(1.0 / 3.0));
    assert_eq!(breaker.state(), State::Closed);
}

#[test]
fn a_trial_failure_reopens_the_breaker() {
    let (breaker, _clock) = ready_for_trials(Config::builder().success_threshold(3));
    succeed(&breaker).unwrap();
    succeed(&breaker).unwrap();
    assert_eq!(breaker.state(), State::HalfOpen);
    let _ = fail(&breaker);
    assert_eq!(breaker.state(), State::Open);
    let rejection = breaker.try_acquire().unwrap_err();
    assert_eq!(rejection.retry_after(), Some(Duration::from_secs(10)));
    assert_eq!(breaker.metrics().times_opened, 2);
}

#[test]
fn half_open_timeout_reopens_a_stuck_half_open_breaker() {
    let half_open_timeout = Duration::from_secs(5);
    let (breaker, clock) = ready_for_trials(Config::builder().half_open_timeout(half_open_timeout));
    let hung = breaker.try_acquire().unwrap();
    assert_eq!(breaker.state(), State::HalfOpen);

    clock.advance(half_open_timeout - NS);
    let rejection = breaker.try_acquire().unwrap_err();
    assert_eq!(
        rejection.state(),
        State::HalfOpen,
        "the trial may still answer"
    );

    clock.advance(NS);
    let rejection = breaker.try_acquire().unwrap_err();
    assert_eq!(
        rejection.state(),
        State::Open,
        "no verdict within half_open_timeout"
    );
    assert_eq!(rejection.retry_after(), Some(Duration::from_secs(10)));
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(breaker.metrics().times_opened, 2);

    // The hung trial answers at last: its period is over, so its success
    // does not close the breaker.
    hung.record_success();
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(breaker.metrics().times_closed, 0);
}

#[test]
fn a_hung_trials_late_failure_neither_reopens_nor_takes_a_new_trial_slot() {
    let (breaker, clock) = ready_for_trials(
        Config::builder()
            .half_open_timeout(Duration::from_secs(5))
            .success_threshold(2),
    );
    let hung = breaker.try_acquire().unwrap();
    clock.advance(Duration::from_secs(5));
    assert!(
        breaker.try_acquire().is_err(),
        "the half-open period timed out"
    );
    clock.advance(Duration::from_secs(10));

    // A fresh half-open period with its one trial slot taken.
    let trial = breaker.try_acquire().unwrap();
    assert_eq!(breaker.state(), State::HalfOpen);
    let opened = breaker.metrics().times_opened;

    hung.record_failure();
    assert_eq!(
        breaker.state(),
        State::HalfOpen,
        "a stale failure does not reopen"
    );
    assert_eq!(breaker.metrics().times_opened, opened);
    assert_eq!(
        breaker.try_acquire().unwrap_err().state(),
        State::HalfOpen,
        "nor does it free (or take) the current trial's slot"
    );
    trial.record_success();
    succeed(&breaker).unwrap();
    assert_eq!(breaker.state(), State::Closed);
}

// --- Backoff -------------------------------------------------------------------

/// Moves an open breaker to half-open at the end of its open time (read from
/// a rejection) and fails the trial. Returns the open time it waited.
fn fail_trial(breaker: &CircuitBreaker, clock: &ManualClock) -> Duration {
    let open_for = breaker.try_acquire().unwrap_err().retry_after().unwrap();
    clock.advance(open_for - NS);
    assert!(breaker.try_acquire().is_err(), "still open 1ns early");
    clock.advance(NS);
    breaker.try_acquire().unwrap().record_failure();
    assert_eq!(breaker.state(), State::Open);
    open_for
}

#[test]
fn backoff_multiplies_the_open_time_on_each_reopen_up_to_the_cap() {
    let (breaker, clock) = breaker(
        Config::builder()
            .failure_threshold(1)
            .recovery_timeout(Duration::from_secs(10))
            .recovery_backoff(2.0)
            .max_recovery_timeout(Duration::from_secs(35)),
    );
    trip(&breaker);
    let open_times: Vec<u64> = (0..5)
        .map(|_| fail_trial(&breaker, &clock).as_secs())
        .collect();
    assert_eq!(open_times, [10, 20, 35, 35, 35]);
}

#[test]
fn closing_resets_the_backed_off_open_time() {
    let (breaker, clock) = breaker(
        Config::builder()
            .failure_threshold(1)
            .recovery_timeout(Duration::from_secs(10))
            .recovery_backoff(3.0),
    );
    trip(&breaker);
    fail_trial(&breaker, &clock);
    fail_trial(&breaker, &clock);
    let open_for = breaker.try_acquire().unwrap_err().retry_after().unwrap();
    assert_eq!(open_for, Duration::from_secs(90));
    clock.advance(open_for);
    succeed(&breaker).unwrap();
    assert_eq!(breaker.state(), State::Closed);

    trip(&breaker);
    assert_eq!(
        breaker.try_acquire().unwrap_err().retry_after(),
        Some(Duration::from_secs(10))
    );
}

#[test]
fn reset_resets_the_backed_off_open_time() {
    let (breaker, clock) = breaker(
        Config::builder()
            .failure_threshold(1)
            .recovery_timeout(Duration::from_secs(10))
            .recovery_backoff(2.0),
    );
    trip(&breaker);
    fail_trial(&breaker, &clock);
    assert_eq!(
        breaker.try_acquire().unwrap_err().retry_after(),
        Some(Duration::from_secs(20))
    );
    breaker.reset();
    trip(&breaker);
    assert_eq!(
        breaker.try_acquire().unwrap_err().retry_after(),
        Some(Duration::from_secs(10))
    );
}

#[test]
fn a_half_open_timeout_backs_off_like_a_failed_trial() {
    let (breaker, clock) = breaker(
        Config::builder()
            .failure_threshold(1)
            .recovery_timeout(Duration::from_secs(10))
            .half_open_timeout(Duration::from_secs(1))
            .recovery_backoff(2.0),
    );
    trip(&breaker);
    clock.advance(Duration::from_secs(10));
    let _hung = breaker.try_acquire().unwrap();
    clock.advance(Duration::from_secs(1));
    let rejection = breaker.try_acquire().unwrap_err();
    assert_eq!(rejection.state(), State::Open);
    assert_eq!(rejection.retry_after(), Some(Duration::from_secs(20)));
}

#[test]
fn a_huge_recovery_backoff_saturates_at_the_cap_instead_of_overflowing() {
    let (breaker, clock) = breaker(
        Config::builder()
            .failure_threshold(1)
            .recovery_timeout(Duration::from_secs(10))
            .recovery_backoff(1e300)
            .max_recovery_timeout(Duration::from_secs(600)),
    );
    trip(&breaker);
    let open_times: Vec<u64> = (0..3)
        .map(|_| fail_trial(&breaker, &clock).as_secs())
        .collect();
    assert_eq!(open_times, [10, 600, 600]);
}

#[test]
fn jitter_on_the_longest_recovery_timeout_does_not_overflow() {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    // Half of these draws spread the open time above Duration::MAX.
    for _ in 0..20 {
        let (breaker, _clock) = breaker(
            Config::builder()
                .failure_threshold(1)
                .recovery_timeout(Duration::MAX)
                .jitter(0.5),
        );
        trip(&breaker);
        let rejection = breaker.try_acquire().unwrap_err();
        assert_eq!(rejection.state(), State::Open);
        assert!(rejection.retry_after().unwrap() > CENTURY);
    }
}

#[test]
fn jitter_keeps_the_open_time_within_its_share_of_the_base() {
    let base = Duration::from_secs(100);
    let jitter = 0.25;
    let (low, high) = (base.mul_f64(1.0 - jitter), base.mul_f64(1.0 + jitter));
    let mut open_times = Vec::new();
    for _ in 0..200 {
        let (breaker, clock) = breaker(
            Config::builder()
                .failure_threshold(1)
                .recovery_timeout(base)
                .jitter(jitter),
        );
        trip(&breaker);
        let open_for = breaker.try_acquire().unwrap_err().retry_after().unwrap();
        assert!(
            (low..=high).contains(&open_for),
            "{open_for:?} outside [{low:?}, {high:?}]"
        );
        // The advertised time is the real one.
        clock.advance(open_for - NS);
        assert!(breaker.try_acquire().is_err());
        clock.advance(NS);
        assert!(breaker.try_acquire().is_ok());
        open_times.push(open_for);
    }
    open_times.sort();
    open_times.dedup();
    assert!(open_times.len() > 100, "jitter spreads the open times");
    let spread = *open_times.last().unwrap() - open_times[0];
    assert!(
        spread > base / 4,
        "200 draws cover most of the 50s range, got {spread:?}"
    );
}

#[test]
fn jitter_spreads_the_backed_off_open_time_too() {
    let jitter = 0.5;
    let (breaker, clock) = breaker(
        Config::builder()
            .failure_threshold(1)
            .recovery_timeout(Duration::from_secs(10))
            .recovery_backoff(2.0)
            .jitter(jitter),
    );
    trip(&breaker);
    for base in [10, 20, 40, 80].map(Duration::from_secs) {
        let open_for = fail_trial(&breaker, &clock);
        assert!(
            (base.mul_f64(1.0 - jitter)..=base.mul_f64(1.0 + jitter)).contains(&open_for),
            "{open_for:?} is not within {jitter} of {base:?}"
        );
    }
}

// --- Generations ---------------------------------------------------------------

#[test]
fn a_late_failure_from_before_recovery_does_not_reopen_the_closed_breaker() {
    let (breaker, clock) = breaker(
        Config::builder()
            .failure_threshold(1)
            .recovery_timeout(Duration::from_secs(10)),
    );
    let slow_call = breaker.try_acquire().unwrap();
    trip(&breaker);
    clock.advance(Duration::from_secs(10));
    succeed(&breaker).unwrap();
    assert_eq!(breaker.state(), State::Closed);

    slow_call.record_failure();
    assert_eq!(
        breaker.state(),
        State::Closed,
        "the failure belongs to an old period"
    );
    let metrics = breaker.metrics();
    assert_eq!(metrics.times_opened, 1);
    assert_eq!(metrics.consecutive_failures, 0);
    assert_eq!(
        metrics.failed_calls, 2,
        "the call still counts in the totals"
    );

    let _ = fail(&breaker);
    assert_eq!(
        breaker.state(),
        State::Open,
        "a current failure still trips"
    );
}

#[test]
fn a_late_failure_from_an_old_closed_period_does_not_affect_half_open_trials() {
    let (breaker, clock) = breaker(
        Config::builder()
            .failure_threshold(1)
            .recovery_timeout(Duration::from_secs(10)),
    );
    let slow_call = breaker.try_acquire().unwrap();
    trip(&breaker);
    clock.advance(Duration::from_secs(10));
    let trial = breaker.try_acquire().unwrap();
    assert_eq!(breaker.state(), State::HalfOpen);

    slow_call.record_failure();
    assert_eq!(breaker.state(), State::HalfOpen, "no reopen");
    assert_eq!(
        breaker.try_acquire().unwrap_err().state(),
        State::HalfOpen,
        "the trial's slot is still the only one taken"
    );
    trial.record_success();
    assert_eq!(breaker.state(), State::Closed);
}

#[test]
fn a_late_success_from_an_old_closed_period_is_not_a_trial_success() {
    let (breaker, clock) = breaker(
        Config::builder()
            .failure_threshold(1)
            .recovery_timeout(Duration::from_secs(10)),
    );
    let slow_call = breaker.try_acquire().unwrap();
    trip(&breaker);
    clock.advance(Duration::from_secs(10));
    let trial = breaker.try_acquire().unwrap();
    slow_call.record_success();
    assert_eq!(breaker.state(), State::HalfOpen);
    trial.record_failure();
    assert_eq!(breaker.state(), State::Open);
}

#[test]
fn a_late_trial_failure_does_not_reopen_the_breaker_its_siblings_closed() {
    let (breaker, _clock) = ready_for_trials(Config::builder().half_open_max_calls(2));
    let slow_trial = breaker.try_acquire().unwrap();
    succeed(&breaker).unwrap();
    assert_eq!(breaker.state(), State::Closed);
    slow_trial.record_failure();
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(breaker.metrics().times_opened, 1);
}

#[test]
fn a_call_admitted_before_reset_does_not_count_after_it() {
    let (breaker, _clock) = breaker(Config::builder().failure_threshold(2));
    let _ = fail(&breaker);
    let before_reset = breaker.try_acquire().unwrap();
    breaker.reset();
    before_reset.record_failure();
    let _ = fail(&breaker);
    assert_eq!(
        breaker.state(),
        State::Closed,
        "one failure since the reset, not two"
    );
    assert_eq!(breaker.metrics().consecutive_failures, 1);
}

// --- Manual control ------------------------------------------------------------

#[test]
fn reset_closes_and_clears_the_consecutive_count_and_the_window() {
    let (breaker, _clock) = breaker(
        Config::builder()
            .failure_threshold(2)
            .failure_rate_threshold(0.5)
            .window_size(4)
            .minimum_calls(3),
    );
    let _ = fail(&breaker);
    breaker.reset();
    assert_eq!(breaker.state(), State::Closed);
    let metrics = breaker.metrics();
    assert_eq!(metrics.consecutive_failures, 0);
    assert_eq!(metrics.failure_rate, None);
    let _ = fail(&breaker);
    assert_eq!(breaker.state(), State::Closed, "the count restarted");

    let _ = fail(&breaker);
    assert_eq!(breaker.state(), State::Open);
    breaker.reset();
    assert_eq!(breaker.state(), State::Closed);
    succeed(&breaker).unwrap();
}

#[test]
fn forced_open_rejects_everything_until_reset() {
    let (breaker, clock) = breaker(
        Config::builder()
            .failure_threshold(1)
            .recovery_timeout(Duration::from_secs(1))
            .half_open_timeout(Duration::from_secs(1)),
    );
    breaker.force_open();
    for _ in 0..3 {
        let ran = Cell::new(false);
        let rejection = rejection(breaker.call(|| {
            ran.set(true);
            Ok(())
        }));
        assert!(!ran.get());
        assert_eq!(rejection.state(), State::ForcedOpen);
        assert_eq!(rejection.retry_after(), None);
        assert_eq!(
            rejection.to_string(),
            "circuit breaker 'dependency' is forced open"
        );
        breaker.record_success();
        breaker.record_failure();
        clock.advance(Duration::from_secs(3600));
        assert_eq!(breaker.state(), State::ForcedOpen, "no timeout ends it");
    }
    breaker.reset();
    assert_eq!(breaker.state(), State::Closed);
    succeed(&breaker).unwrap();
}

#[test]
fn force_open_overrides_an_open_or_half_open_breaker() {
    let (breaker, clock) = ready_for_trials(Config::builder());
    let trial = breaker.try_acquire().unwrap();
    breaker.force_open();
    trial.record_success();
    assert_eq!(
        breaker.state(),
        State::ForcedOpen,
        "the trial's period is over"
    );
    clock.advance(Duration::from_secs(3600));
    assert!(breaker.try_acquire().is_err());
}

#[test]
fn disabled_admits_everything_counts_and_never_trips() {
    let (breaker, clock) = breaker(
        Config::builder()
            .failure_threshold(1)
            .failure_rate_threshold(0.1)
            .window_size(2)
            .minimum_calls(1),
    );
    trip(&breaker);
    breaker.disable();
    let runs = Cell::new(0);
    for _ in 0..10 {
        let result = breaker.call(|| {
            runs.set(runs.get() + 1);
            Err::<(), _>("down")
        });
        assert_eq!(result, Err(CallError::Failed("down")));
        clock.advance(Duration::from_secs(60));
    }
    breaker.record_failure();
    assert_eq!(runs.get(), 10, "every call ran");
    assert_eq!(breaker.state(), State::Disabled);
    let metrics = breaker.metrics();
    assert_eq!(metrics.failed_calls, 12, "1 before + 10 calls + 1 manual");
    assert_eq!(metrics.rejected_calls, 0);
    assert_eq!(metrics.times_opened, 1, "disabled never trips");

    breaker.reset();
    assert_eq!(breaker.state(), State::Closed);
    let _ = fail(&breaker);
    assert_eq!(
        breaker.state(),
        State::Open,
        "after reset the rules apply again"
    );
}

#[test]
fn manual_states_replace_each_other_and_only_reset_closes() {
    let (breaker, _clock) = breaker(Config::builder());
    breaker.disable();
    breaker.force_open();
    assert_eq!(breaker.state(), State::ForcedOpen);
    breaker.disable();
    assert_eq!(breaker.state(), State::Disabled);
    succeed(&breaker).unwrap();
    assert_eq!(
        breaker.state(),
        State::Disabled,
        "a success does not close it"
    );
    breaker.reset();
    assert_eq!(breaker.state(), State::Closed);
}
