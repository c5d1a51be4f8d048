//! `Metrics`: every field, the invariants between them, and which of them
//! survive `reset()`.

mod common;

use std::time::Duration;

use circuit_runtime::{CallError, CircuitBreaker, Config, ConfigBuilder, ManualClock, Metrics};

fn breaker(builder: ConfigBuilder) -> (CircuitBreaker, ManualClock) {
    common::manual_breaker("metered", builder)
}

fn succeed(breaker: &CircuitBreaker) {
    breaker.call(|| Ok::<_, ()>(())).unwrap();
}

fn fail(breaker: &CircuitBreaker) {
    let _ = breaker.call(|| Err::<(), _>("down"));
}

fn ignore(breaker: &CircuitBreaker) {
    let _ = breaker.call_with(|_| false, || Err::<(), _>("not found"));
}

fn reject(breaker: &CircuitBreaker) {
    assert!(matches!(
        breaker.call(|| Ok::<_, ()>(())),
        Err(CallError::Rejected(_))
    ));
}

/// The call counters as a tuple, for compact comparisons.
fn calls(m: &Metrics) -> (u64, u64, u64, u64, u64, u64) {
    (
        m.total_calls,
        m.successful_calls,
        m.failed_calls,
        m.ignored_calls,
        m.rejected_calls,
        m.slow_calls,
    )
}

fn assert_total_is_the_sum(m: &Metrics) {
    assert_eq!(
        m.total_calls,
        m.successful_calls + m.failed_calls + m.ignored_calls,
        "total = successful + failed + ignored, rejections apart: {m:?}"
    );
}

#[test]
fn a_new_breaker_has_zero_metrics() {
    let (breaker, _clock) = breaker(Config::builder());
    let m = breaker.metrics();
    assert_eq!(calls(&m), (0, 0, 0, 0, 0, 0));
    assert_eq!(
        (m.times_opened, m.times_half_opened, m.times_closed),
        (0, 0, 0)
    );
    assert_eq!(m.consecutive_failures, 0);
    assert_eq!(m.failure_rate, None);
    assert_eq!(m.slow_call_rate, None);
    assert_eq!(m.last_failure_at, None);
    assert_eq!(m.last_transition_at, None);
}

#[test]
fn every_call_counter_counts_its_own_outcome() {
    let (breaker, clock) = breaker(
        Config::builder()
            .failure_threshold(3)
            .slow_call_duration(Duration::from_secs(1)),
    );
    succeed(&breaker);
    succeed(&breaker);
    fail(&breaker);
    ignore(&breaker);
    let _ = breaker.call(|| {
        clock.advance(Duration::from_secs(2));
        Err::<(), _>("slow and failing")
    });
    let m = breaker.metrics();
    assert_eq!(calls(&m), (5, 2, 2, 1, 0, 1));
    assert_eq!(
        m.consecutive_failures, 2,
        "the ignored call did not reset it"
    );
    assert_total_is_the_sum(&m);

    fail(&breaker);
    reject(&breaker);
    reject(&breaker);
    let m = breaker.metrics();
    assert_eq!(calls(&m), (6, 2, 3, 1, 2, 1), "rejections are not calls");
    assert_total_is_the_sum(&m);
}

#[test]
fn transition_counters_count_each_kind_of_transition() {
    let (breaker, clock) = breaker(
        Config::builder()
            .failure_threshold(1)
            .recovery_timeout(Duration::from_secs(10)),
    );
    fail(&breaker);
    clock.advance(Duration::from_secs(10));
    fail(&breaker); // a failed trial: half-open, then open again
    clock.advance(Duration::from_secs(10));
    succeed(&breaker); // a successful trial: half-open, then closed
    let m = breaker.metrics();
    assert_eq!(
        (m.times_opened, m.times_half_opened, m.times_closed),
        (2, 2, 1)
    );

    breaker.force_open();
    breaker.disable();
    breaker.reset();
    let m = breaker.metrics();
    assert_eq!(
        (m.times_opened, m.times_half_opened, m.times_closed),
        (2, 2, 2),
        "forced open is not a trip; resetting to closed is a close"
    );
}

#[test]
fn consecutive_failures_follow_the_closed_period() {
    let (breaker, _clock) = breaker(Config::builder().failure_threshold(3));
    fail(&breaker);
    fail(&breaker);
    assert_eq!(breaker.metrics().consecutive_failures, 2);
    succeed(&breaker);
    assert_eq!(breaker.metrics().consecutive_failures, 0);
    fail(&breaker);
    fail(&breaker);
    fail(&breaker);
    assert_eq!(
        breaker.metrics().consecutive_failures,
        0,
        "an open breaker has no closed-period count"
    );
}

#[test]
fn call_counters_are_monotonic_across_reset() {
    let (breaker, _clock) = breaker(
        Config::builder()
            .failure_threshold(2)
            .failure_rate_threshold(0.9)
            .window_size(10)
            .minimum_calls(10),
    );
    succeed(&breaker);
    ignore(&breaker);
    fail(&breaker);
    fail(&breaker);
    reject(&breaker);
    let before = breaker.metrics();
    breaker.reset();
    let after = breaker.metrics();
    assert_eq!(
        calls(&after),
        calls(&before),
        "reset keeps the call counters"
    );
    assert_eq!(after.times_opened, before.times_opened);
    assert_eq!(after.times_closed, before.times_closed + 1);
    assert_eq!(
        after.consecutive_failures, 0,
        "state-machine counters are cleared"
    );
    assert_eq!(after.failure_rate, None, "and so is the window");
    assert_eq!(after.last_failure_at, before.last_failure_at);

    succeed(&breaker);
    let later = breaker.metrics();
    assert_eq!(later.successful_calls, before.successful_calls + 1);
    assert_eq!(later.total_calls, before.total_calls + 1);
}

#[test]
fn counters_never_decrease_through_a_lifecycle() {
    let (breaker, clock) = breaker(
        Config::builder()
            .failure_threshold(2)
            .recovery_timeout(Duration::from_secs(1)),
    );
    let steps: [&dyn Fn(); 8] = [
        &|| {
            let _ = breaker.call(|| Ok::<_, ()>(()));
        },
        &|| fail(&breaker),
        &|| ignore(&breaker),
        &|| drop(breaker.try_acquire()),
        &|| clock.advance(Duration::from_millis(700)),
        &|| breaker.reset(),
        &|| breaker.force_open(),
        &|| breaker.disable(),
    ];
    let mut last = breaker.metrics();
    for round in 0..200_usize {
        steps[round % steps.len()]();
        if round % 3 == 0 {
            fail(&breaker);
        }
        let m = breaker.metrics();
        for (now, then) in [
            (m.total_calls, last.total_calls),
            (m.successful_calls, last.successful_calls),
            (m.failed_calls, last.failed_calls),
            (m.ignored_calls, last.ignored_calls),
            (m.rejected_calls, last.rejected_calls),
            (m.times_opened, last.times_opened),
            (m.times_half_opened, last.times_half_opened),
            (m.times_closed, last.times_closed),
        ] {
            assert!(now >= then, "a counter went down in round {round}: {m:?}");
        }
        assert_total_is_the_sum(&m);
        last = m;
    }
}

#[test]
fn failure_rate_is_none_without_a_rate_rule() {
    let (breaker, _clock) = breaker(Config::builder().failure_threshold(100));
    fail(&breaker);
    succeed(&breaker);
    assert_eq!(breaker.metrics().failure_rate, None);
}

#[test]
fn failure_rate_is_the_share_of_failures_in_the_window() {
    let (breaker, _clock) = breaker(
        Config::builder()
            .failure_threshold(100)
            .failure_rate_threshold(1.0)
            .window_size(4)
            .minimum_calls(4),
    );
    assert_eq!(
        breaker.metrics().failure_rate,
        None,
        "an empty window has no rate"
    );
    fail(&breaker);
    assert_eq!(breaker.metrics().failure_rate, Some(1.0));
    succeed(&breaker);
    ignore(&breaker);
    assert_eq!(breaker.metrics().failure_rate, Some(0.5));
    succeed(&breaker);
    succeed(&breaker);
    assert_eq!(breaker.metrics().failure_rate, Some(0.25));
    succeed(&breaker);
    assert_eq!(
        breaker.metrics().failure_rate,
        Some(0.0),
        "the failure slid out of the last 4"
    );
}

#[test]
fn failure_rate_over_a_time_window_follows_the_clock() {
    let (breaker, clock) = breaker(
        Config::builder()
            .failure_threshold(100)
            .failure_rate_threshold(1.0)
            .window_duration(Duration::from_secs(10))
            .minimum_calls(100),
    );
    fail(&breaker);
    clock.advance(Duration::from_secs(5));
    succeed(&breaker);
    assert_eq!(breaker.metrics().failure_rate, Some(0.5));
    clock.advance(Duration::from_secs(5));
    assert_eq!(
        breaker.metrics().failure_rate,
        Some(0.0),
        "the failure aged out"
    );
    clock.advance(Duration::from_secs(5));
    assert_eq!(breaker.metrics().failure_rate, None);
}

#[test]
fn slow_call_rate_is_the_share_of_slow_calls_in_the_window() {
    let (breaker, clock) = breaker(
        Config::builder()
            .slow_call_duration(Duration::from_secs(1))
            .slow_call_rate_threshold(1.0)
            .window_size(4)
            .minimum_calls(4),
    );
    succeed(&breaker);
    breaker
        .call(|| {
            clock.advance(Duration::from_secs(1));
            Ok::<_, ()>(())
        })
        .unwrap();
    let m = breaker.metrics();
    assert_eq!(m.slow_call_rate, Some(0.5));
    assert_eq!(m.slow_calls, 1);
    assert_eq!(m.failure_rate, Some(0.0));
}

#[test]
fn last_failure_at_is_the_manual_clocks_time_of_the_last_failure() {
    let (breaker, clock) = breaker(Config::builder().failure_threshold(100));
    succeed(&breaker);
    assert_eq!(breaker.metrics().last_failure_at, None);
    clock.advance(Duration::from_secs(3));
    fail(&breaker);
    let first = clock.now();
    assert_eq!(breaker.metrics().last_failure_at, Some(first));
    clock.advance(Duration::from_secs(4));
    succeed(&breaker);
    assert_eq!(
        breaker.metrics().last_failure_at,
        Some(first),
        "successes keep it"
    );
    fail(&breaker);
    assert_eq!(breaker.metrics().last_failure_at, Some(clock.now()));
}

#[test]
fn last_transition_at_is_the_manual_clocks_time_of_the_last_change() {
    let (breaker, clock) = breaker(
        Config::builder()
            .failure_threshold(1)
            .recovery_timeout(Duration::from_secs(10)),
    );
    clock.advance(Duration::from_secs(1));
    fail(&breaker);
    let opened = clock.now();
    assert_eq!(breaker.metrics().last_transition_at, Some(opened));
    clock.advance(Duration::from_secs(5));
    reject(&breaker);
    assert_eq!(
        breaker.metrics().last_transition_at,
        Some(opened),
        "a rejection is no transition"
    );
    clock.advance(Duration::from_secs(5));
    let trial = breaker.try_acquire().unwrap();
    assert_eq!(breaker.metrics().last_transition_at, Some(clock.now()));
    clock.advance(Duration::from_secs(2));
    trial.record_success();
    assert_eq!(breaker.metrics().last_transition_at, Some(clock.now()));
}
