//! Unit tests that need the state machine's insides: a seam that skips
//! billions of transitions.

use super::*;
use std::time::Duration;

use super::words::{tag_of, StateWord, MAX_GENERATION};
use crate::sync::{lock, Ordering};
use crate::ManualClock;

impl CircuitBreaker {
    /// Puts the breaker where `generation - generation_now` transitions
    /// would have left it, in its current state: what a long-lived
    /// process reaches after days of flapping, without the days.
    fn fast_forward_to(&self, generation: u64) {
        let _recovery = lock(&self.recovery);
        let state = self.recorded_state();
        let tag = tag_of(generation);
        self.reset_period_counters(tag);
        if let (State::Closed, Some(window)) = (state, self.windows.current()) {
            window.begin_period(tag);
        }
        self.state
            .store(StateWord::new(generation, state), Ordering::Release);
    }

    fn generation(&self) -> u64 {
        self.state.load(Ordering::Acquire).generation()
    }
}

fn breaker() -> (CircuitBreaker, ManualClock) {
    let clock = ManualClock::new();
    let config = Config::builder()
        .failure_threshold(3)
        .success_threshold(1)
        .half_open_max_calls(1)
        .recovery_timeout(Duration::from_secs(1))
        .failure_rate_threshold(1.0)
        .window_size(5)
        .minimum_calls(5)
        .clock(clock.clone())
        .build()
        .unwrap();
    (CircuitBreaker::new("wrap", config), clock)
}

/// One full cycle through every rule: consecutive failures trip it, a
/// failed trial reopens it, a successful trial closes it, and a
/// failure-rate window judges the closed period.
fn cycle(breaker: &CircuitBreaker, clock: &ManualClock) {
    assert_eq!(breaker.state(), State::Closed);
    let stale = breaker.try_acquire().unwrap();
    breaker.record_failure();
    breaker.record_failure();
    assert_eq!(breaker.metrics().consecutive_failures, 2);
    breaker.record_failure();
    assert_eq!(breaker.state(), State::Open, "the consecutive rule trips");
    stale.record_failure();

    clock.advance(Duration::from_secs(1));
    let trial = breaker.try_acquire().expect("a trial after the timeout");
    assert_eq!(breaker.state(), State::HalfOpen);
    assert!(breaker.try_acquire().is_err(), "one slot");
    trial.record_failure();
    assert_eq!(breaker.state(), State::Open, "a failed trial reopens");

    clock.advance(Duration::from_secs(1));
    breaker.try_acquire().unwrap().record_success();
    assert_eq!(breaker.state(), State::Closed, "a good trial closes");

    for _ in 0..4 {
        breaker.record_failure();
        breaker.record_success();
    }
    assert_eq!(breaker.metrics().consecutive_failures, 0);
    assert_eq!(breaker.metrics().failure_rate, Some(0.4));
    breaker.reset();
}

#[test]
fn every_rule_works_across_the_tag_wrapping_around() {
    // Each start is a few transitions short of a boundary: where the
    // counters' 32-bit tags wrap (and where a signed distance between
    // tags flips sign), and where the 61-bit generation itself wraps.
    let boundaries = [1 << 31, 1 << 32, MAX_GENERATION + 1];
    for boundary in boundaries {
        let (breaker, clock) = breaker();
        breaker.fast_forward_to(boundary - 6);
        for _ in 0..4 {
            cycle(&breaker, &clock);
        }
        assert!(
            breaker.generation().wrapping_sub(boundary) & MAX_GENERATION < 20,
            "crossed {boundary:#x}, now at {:#x}",
            breaker.generation()
        );
    }
}

/// A call admitted exactly 2^32 transitions ago carries the same
/// counter tag as the current period: only the full generation tells
/// them apart, and it does.
#[test]
fn an_outcome_from_2_pow_32_transitions_ago_is_still_stale() {
    let (breaker, _clock) = breaker();
    let closed = breaker.try_acquire().unwrap();
    let generation = breaker.generation();
    breaker.fast_forward_to(generation + (1 << 32));
    assert_eq!(breaker.state(), State::Closed);
    breaker.record_failure();
    breaker.record_failure();
    closed.record_failure();
    assert_eq!(
        breaker.state(),
        State::Closed,
        "the stale failure did not count"
    );
    assert_eq!(breaker.metrics().consecutive_failures, 2);
}

#[test]
fn a_trial_from_2_pow_32_transitions_ago_neither_closes_nor_frees_a_slot() {
    let (breaker, clock) = breaker();
    breaker.force_open();
    breaker.reset();
    for _ in 0..3 {
        breaker.record_failure();
    }
    clock.advance(Duration::from_secs(1));
    let old_trial = breaker.try_acquire().unwrap();
    let generation = breaker.generation();
    breaker.fast_forward_to(generation + (1 << 32));
    let trial = breaker.try_acquire().expect("the new period's slot");
    old_trial.record_success();
    assert_eq!(
        breaker.state(),
        State::HalfOpen,
        "the stale success did not close it"
    );
    assert!(breaker.try_acquire().is_err(), "nor free the taken slot");
    drop(trial);
}
