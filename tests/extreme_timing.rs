//! Timeouts as short as the configuration allows (one nanosecond), hooks
//! slower than every timeout, and clocks moved to the end of time: every
//! call still returns, no public method panics, and every rule still works.

mod common;

use std::time::Duration;

use circuit_runtime::{CircuitBreaker, Config, ConfigBuilder, ManualClock, State};

const NANO: Duration = Duration::from_nanos(1);

/// `f`'s result, or a failed test if it has not returned within a minute.
fn returns<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    common::returns_within(what, Duration::from_secs(60), f)
}

fn manual(builder: ConfigBuilder) -> (CircuitBreaker, ManualClock) {
    common::manual_breaker("extreme", builder)
}

/// A hook slower than both timeouts, as a preempted thread or a hook that
/// logs over the network would be: the clock moves past the half-open and
/// recovery timeouts during every transition. A call moves the breaker from
/// open to half-open at most once, then takes its trial.
#[test]
fn a_hook_slower_than_every_timeout_cannot_make_a_call_flap_for_ever() {
    let (breaker, clock) = manual(
        Config::builder()
            .failure_threshold(1)
            .recovery_timeout(Duration::from_millis(5))
            .half_open_timeout(Duration::from_millis(5)),
    );
    let slow = clock.clone();
    breaker.on_transition(move |_| slow.advance(Duration::from_millis(10)));
    breaker.record_failure();
    clock.advance(Duration::from_millis(5));

    let breaker = std::sync::Arc::new(breaker);
    let caller = std::sync::Arc::clone(&breaker);
    let admitted = returns("try_acquire with a slow hook", move || {
        caller.try_acquire().map(|permit| {
            let state = permit.admitted_in();
            permit.record_success();
            state
        })
    });
    assert_eq!(
        admitted.ok(),
        Some(State::HalfOpen),
        "the call ran as a trial"
    );
    assert_eq!(breaker.state(), State::Closed);
    let metrics = breaker.metrics();
    assert_eq!(metrics.times_half_opened, 1);
    assert_eq!(metrics.times_opened, 1);
}

/// The same on the real clock, with the shortest timeouts the validation
/// accepts: any transition outlasts them.
#[test]
fn nanosecond_timeouts_on_the_real_clock_never_make_a_call_spin() {
    let config = Config::builder()
        .failure_threshold(1)
        .recovery_timeout(NANO)
        .max_recovery_timeout(NANO)
        .half_open_timeout(NANO)
        .build()
        .expect("nanosecond timeouts are valid");
    let breaker = std::sync::Arc::new(CircuitBreaker::new("extreme.real", config));
    let caller = std::sync::Arc::clone(&breaker);
    returns("calls with nanosecond timeouts", move || {
        for round in 0..2_000 {
            let _ = caller.call(|| if round % 3 == 0 { Err("down") } else { Ok(()) });
            let _ = caller.try_acquire();
        }
    });
    let metrics = breaker.metrics();
    assert!(
        metrics.times_opened > 0,
        "the failures did trip it: {metrics:?}"
    );
}

/// Several threads on nanosecond timeouts: each call returns whatever the
/// others do to the state meanwhile.
#[test]
fn nanosecond_timeouts_under_contention_never_make_a_call_spin() {
    let config = Config::builder()
        .failure_threshold(1)
        .recovery_timeout(NANO)
        .max_recovery_timeout(NANO)
        .half_open_timeout(NANO)
        .half_open_max_calls(1)
        .build()
        .unwrap();
    let breaker = std::sync::Arc::new(CircuitBreaker::new("extreme.contended", config));
    let caller = std::sync::Arc::clone(&breaker);
    returns("contended calls with nanosecond timeouts", move || {
        std::thread::scope(|scope| {
            for thread in 0..4 {
                let breaker = &caller;
                scope.spawn(move || {
                    for round in 0..1_000 {
                        let fail = (round + thread) % 2 == 0;
                        let _ = breaker.call(|| if fail { Err("down") } else { Ok(()) });
                    }
                });
            }
        });
    });
    let metrics = breaker.metrics();
    assert_eq!(
        metrics.total_calls + metrics.rejected_calls,
        4_000,
        "every call either ran or was rejected: {metrics:?}"
    );
}

/// `ManualClock::advance(Duration::MAX)` is documented as valid; with a
/// one-nanosecond time window every bucket number is at the end of the
/// range. Nothing panics, and the rate rule still trips.
#[test]
fn a_tiny_time_window_survives_the_clock_jumping_to_the_end_of_time() {
    let (breaker, clock) = manual(
        Config::builder()
            .failure_threshold(100)
            .window_duration(NANO)
            .minimum_calls(2)
            .failure_rate_threshold(0.5),
    );
    breaker.call(|| Ok::<_, ()>(())).unwrap();
    clock.advance(Duration::MAX);
    let _ = breaker.metrics();
    breaker.call(|| Ok::<_, ()>(())).unwrap();
    assert_eq!(breaker.metrics().failure_rate, Some(0.0));
    let _ = breaker.call(|| Err::<(), _>("down"));
    // At the end of time the open period cannot end later than now, so a
    // call would already meet a trial: the trip shows in the counters.
    assert_eq!(
        breaker.metrics().times_opened,
        1,
        "one failure in two: rate 0.5"
    );
    assert_eq!(breaker.state(), State::HalfOpen);
    clock.advance(Duration::MAX);
    let metrics = breaker.metrics();
    assert_eq!(metrics.failed_calls, 1);
}

/// Every public method, on every kind of window, after the clock has been
/// moved by the largest amounts there are.
#[test]
fn no_public_method_panics_after_huge_clock_jumps() {
    let windows: [fn(ConfigBuilder) -> ConfigBuilder; 4] = [
        |b| b.window_duration(NANO),
        |b| b.window_duration(Duration::MAX),
        |b| b.window_size(1),
        |b| b.slow_call_duration(NANO).slow_call_rate_threshold(1.0),
    ];
    for window in windows {
        let (breaker, clock) = manual(window(
            Config::builder()
                .failure_threshold(2)
                .failure_rate_threshold(1.0)
                .minimum_calls(1)
                .recovery_timeout(Duration::MAX)
                .half_open_timeout(NANO)
                .recovery_backoff(1e300)
                .jitter(1.0),
        ));
        for jump in [Duration::ZERO, NANO, Duration::MAX, Duration::MAX, NANO] {
            clock.advance(jump);
            let _ = breaker.call(|| Err::<(), _>("down"));
            let _ = breaker.call(|| Ok::<_, ()>(()));
            if let Ok(permit) = breaker.try_acquire() {
                permit.record_failure();
            }
            breaker.record_success();
            breaker.record_failure();
            let _ = breaker.metrics();
            let _ = breaker.now();
            breaker.disable();
            breaker.force_open();
            breaker.reset();
        }
    }
}
