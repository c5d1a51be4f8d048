//! The two-step API (`try_acquire`, then a verdict on the `Permit`) and the
//! manual `record_success` / `record_failure` of the breaker itself.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use circuit_runtime::{CircuitBreaker, Config, ConfigBuilder, ManualClock, State};

fn breaker(builder: ConfigBuilder) -> (CircuitBreaker, ManualClock) {
    common::manual_breaker("permits", builder)
}

/// A breaker whose recovery timeout has elapsed: its next permit is a trial.
fn half_open(builder: ConfigBuilder) -> (CircuitBreaker, ManualClock) {
    let (breaker, clock) = breaker(
        builder
            .failure_threshold(1)
            .recovery_timeout(Duration::from_secs(10)),
    );
    breaker.record_failure();
    assert_eq!(breaker.state(), State::Open);
    clock.advance(Duration::from_secs(10));
    (breaker, clock)
}

#[test]
fn permit_verdicts_count_like_calls() {
    let (breaker, _clock) = breaker(Config::builder().failure_threshold(2));
    breaker.try_acquire().unwrap().record_success();
    breaker.try_acquire().unwrap().record_ignored();
    breaker.try_acquire().unwrap().record_failure();
    let metrics = breaker.metrics();
    assert_eq!(
        (
            metrics.successful_calls,
            metrics.ignored_calls,
            metrics.failed_calls
        ),
        (1, 1, 1)
    );
    assert_eq!(metrics.consecutive_failures, 1);
    breaker.try_acquire().unwrap().record_ignored();
    breaker.try_acquire().unwrap().record_failure();
    assert_eq!(
        breaker.state(),
        State::Open,
        "ignored did not reset the count"
    );
    assert!(breaker.try_acquire().is_err());
    assert_eq!(breaker.metrics().rejected_calls, 1);
}

#[test]
fn permits_say_which_state_admitted_them() {
    let (breaker, _clock) = half_open(Config::builder());
    let trial = breaker.try_acquire().unwrap();
    assert_eq!(trial.admitted_in(), State::HalfOpen);
    trial.record_success();
    let closed = breaker.try_acquire().unwrap();
    assert_eq!(closed.admitted_in(), State::Closed);
    closed.record_success();
    breaker.disable();
    let disabled = breaker.try_acquire().unwrap();
    assert_eq!(disabled.admitted_in(), State::Disabled);
    disabled.record_failure();
    assert_eq!(breaker.state(), State::Disabled);
}

#[test]
fn many_permits_may_be_held_at_once_while_closed() {
    let (breaker, _clock) = breaker(Config::builder().failure_threshold(3));
    let permits: Vec<_> = (0..100).map(|_| breaker.try_acquire().unwrap()).collect();
    for permit in permits {
        permit.record_failure();
    }
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(breaker.metrics().failed_calls, 100);
    assert_eq!(breaker.metrics().times_opened, 1);
}

#[test]
fn a_trial_permit_dropped_without_verdict_releases_its_slot_and_records_nothing() {
    let (breaker, _clock) = half_open(Config::builder().half_open_max_calls(1));
    let before = breaker.metrics();
    let trial = breaker.try_acquire().unwrap();
    assert!(breaker.try_acquire().is_err(), "the only slot is taken");
    drop(trial);

    let after = breaker.metrics();
    assert_eq!(
        breaker.state(),
        State::HalfOpen,
        "no verdict, no transition"
    );
    assert_eq!(after.total_calls, before.total_calls);
    assert_eq!(after.failed_calls, before.failed_calls);
    assert_eq!(after.successful_calls, before.successful_calls);
    assert_eq!(after.ignored_calls, before.ignored_calls);

    let trial = breaker.try_acquire().expect("the slot came back");
    trial.record_success();
    assert_eq!(breaker.state(), State::Closed);
}

#[test]
fn dropped_trial_permits_do_not_count_toward_success_threshold() {
    let (breaker, _clock) = half_open(
        Config::builder()
            .half_open_max_calls(2)
            .success_threshold(2),
    );
    for _ in 0..10 {
        drop(breaker.try_acquire().unwrap());
        drop(breaker.try_acquire().unwrap());
    }
    breaker.try_acquire().unwrap().record_success();
    assert_eq!(breaker.state(), State::HalfOpen, "one success so far");
    breaker.try_acquire().unwrap().record_success();
    assert_eq!(breaker.state(), State::Closed);
}

#[test]
fn a_closed_permit_dropped_without_verdict_records_nothing() {
    let (breaker, _clock) = breaker(Config::builder().failure_threshold(1));
    for _ in 0..10 {
        drop(breaker.try_acquire().unwrap());
    }
    let metrics = breaker.metrics();
    assert_eq!(metrics.total_calls, 0);
    assert_eq!(metrics.failed_calls, 0);
    assert_eq!(breaker.state(), State::Closed);
}

/// A held permit cannot tell whether the panic that drops it came from
/// its call or from code around it, so it counts as a cancellation:
/// counting someone else's panic would trip a healthy dependency.
#[test]
fn a_permit_dropped_by_a_panic_counts_as_a_cancellation() {
    let (breaker, _clock) = breaker(Config::builder().failure_threshold(1));
    let unwound = catch_unwind(AssertUnwindSafe(|| {
        let _permit = breaker.try_acquire().unwrap();
        panic!("something near the call blew up");
    }));
    assert!(unwound.is_err());
    assert_eq!(breaker.metrics().failed_calls, 0);
    assert_eq!(breaker.metrics().total_calls, 0);
    assert_eq!(breaker.state(), State::Closed);
}

#[test]
fn a_trial_permit_dropped_by_a_panic_gives_its_slot_back() {
    let (breaker, _clock) = half_open(Config::builder().half_open_max_calls(1));
    let unwound = catch_unwind(AssertUnwindSafe(|| {
        let _trial = breaker.try_acquire().unwrap();
        assert_eq!(breaker.state(), State::HalfOpen);
        panic!("something near the trial blew up");
    }));
    assert!(unwound.is_err());
    assert_eq!(breaker.state(), State::HalfOpen);
    assert_eq!(breaker.metrics().times_opened, 1);
    breaker
        .try_acquire()
        .expect("the only slot is free again")
        .record_success();
    assert_eq!(breaker.state(), State::Closed);
}

/// `try_acquire` from a destructor running during an unwind, racing other
/// threads that end half-open periods: a call that loses the race for a
/// slot was never handed a permit, so nothing can be recorded for it.
#[test]
fn a_lost_race_for_a_trial_slot_records_nothing_even_while_unwinding() {
    struct AcquireOnDrop<'a>(&'a CircuitBreaker);
    impl Drop for AcquireOnDrop<'_> {
        fn drop(&mut self) {
            for _ in 0..50 {
                if let Ok(permit) = self.0.try_acquire() {
                    permit.record_ignored();
                }
            }
        }
    }

    let clock = ManualClock::new();
    let config = Config::builder()
        .failure_threshold(1)
        .half_open_max_calls(2)
        .success_threshold(3)
        .recovery_timeout(Duration::from_secs(1))
        .clock(clock.clone())
        .build()
        .unwrap();
    let breaker = CircuitBreaker::new("permits.unwinding", config);
    let done = std::sync::atomic::AtomicBool::new(false);
    silence_panics();
    std::thread::scope(|scope| {
        // Ends half-open periods as fast as it can: reset, trip, recover.
        scope.spawn(|| {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                breaker.reset();
                breaker.force_open();
                breaker.reset();
                let _ = breaker.call(|| Err::<(), _>("trip"));
                clock.advance(Duration::from_secs(1));
            }
        });
        for _ in 0..2_000 {
            let _ = catch_unwind(AssertUnwindSafe(|| {
                let _guard = AcquireOnDrop(&breaker);
                panic!("unwinding through try_acquire");
            }));
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    // Every failure here is one of the tripping calls; none is phantom.
    let metrics = breaker.metrics();
    assert_eq!(metrics.failed_calls, metrics.times_opened);
}

#[test]
fn a_permit_given_its_verdict_before_a_panic_is_not_counted_twice() {
    let (breaker, _clock) = breaker(Config::builder().failure_threshold(1));
    let unwound = catch_unwind(AssertUnwindSafe(|| {
        breaker.try_acquire().unwrap().record_success();
        panic!("after the call");
    }));
    assert!(unwound.is_err());
    let metrics = breaker.metrics();
    assert_eq!((metrics.successful_calls, metrics.failed_calls), (1, 0));
    assert_eq!(breaker.state(), State::Closed);
}

#[test]
fn manual_record_failure_counts_toward_tripping() {
    let (breaker, _clock) = breaker(Config::builder().failure_threshold(3));
    breaker.record_failure();
    breaker.record_failure();
    assert_eq!(breaker.metrics().consecutive_failures, 2);
    breaker.record_success();
    assert_eq!(breaker.metrics().consecutive_failures, 0);
    for _ in 0..3 {
        breaker.record_failure();
    }
    assert_eq!(breaker.state(), State::Open);
    let metrics = breaker.metrics();
    assert_eq!(
        (
            metrics.failed_calls,
            metrics.successful_calls,
            metrics.total_calls
        ),
        (5, 1, 6)
    );
}

#[test]
fn manual_record_success_closes_a_half_open_breaker() {
    let (breaker, _clock) = half_open(Config::builder());
    // Only a call moves an open breaker to half-open; a permit dropped
    // unused does that without reaching a verdict.
    drop(breaker.try_acquire().unwrap());
    assert_eq!(breaker.state(), State::HalfOpen);
    breaker.record_success();
    assert_eq!(breaker.state(), State::Closed);
}

#[test]
fn manual_record_failure_reopens_a_half_open_breaker() {
    let (breaker, _clock) = half_open(Config::builder());
    drop(breaker.try_acquire().unwrap());
    assert_eq!(breaker.state(), State::HalfOpen);
    breaker.record_failure();
    assert_eq!(breaker.state(), State::Open);
}

#[test]
fn manual_records_on_an_open_breaker_change_nothing_but_the_counters() {
    let (breaker, _clock) = breaker(
        Config::builder()
            .failure_threshold(1)
            .recovery_timeout(Duration::from_secs(10)),
    );
    breaker.record_failure();
    breaker.record_success();
    breaker.record_failure();
    assert_eq!(breaker.state(), State::Open);
    let metrics = breaker.metrics();
    assert_eq!(metrics.times_opened, 1);
    assert_eq!((metrics.failed_calls, metrics.successful_calls), (2, 1));
    assert_eq!(
        breaker.try_acquire().unwrap_err().retry_after(),
        Some(Duration::from_secs(10)),
        "a failure while open does not extend the open time"
    );
}

/// These tests panic on purpose; keep the output readable.
fn silence_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !info.to_string().contains("unwinding through try_acquire") {
                default(info);
            }
        }));
    });
}
