//! Loom models of the state machine: every interleaving (up to a preemption
//! bound) of two or three threads racing on one breaker.
//!
//! Run with:
//! `RUSTFLAGS="--cfg loom" cargo test -p circuit-runtime --test loom --release`
//! (`LOOM_MAX_PREEMPTIONS` raises the bound; the default here is 2).
#![cfg(loom)]

use std::time::Duration;

use circuit_runtime::{CircuitBreaker, Config, ManualClock, Permit, State};
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

fn model(body: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound.get_or_insert(2);
    builder.check(body);
}

/// A breaker that has just become eligible for trials: open, with its
/// recovery timeout elapsed, so the next acquire moves it to half-open.
fn recovering(
    half_open_max_calls: u32,
    success_threshold: u32,
) -> (Arc<CircuitBreaker>, ManualClock) {
    let clock = ManualClock::new();
    let config = Config::builder()
        .failure_threshold(1)
        .recovery_timeout(Duration::from_secs(1))
        .half_open_max_calls(half_open_max_calls)
        .success_threshold(success_threshold)
        .clock(clock.clone())
        .build()
        .unwrap();
    let breaker = CircuitBreaker::new("loom", config);
    breaker.record_failure();
    clock.advance(Duration::from_secs(1));
    (Arc::new(breaker), clock)
}

#[derive(Clone, Copy, Debug)]
enum End {
    Success,
    Failure,
    Ignored,
    Drop,
}

fn end(permit: Permit<'_>, how: End) {
    match how {
        End::Success => permit.record_success(),
        End::Failure => permit.record_failure(),
        End::Ignored => permit.record_ignored(),
        End::Drop => drop(permit),
    }
}

/// Three threads try to run a trial at once; the in-flight count, measured
/// inside the "call", never passes `half_open_max_calls`.
#[test]
fn half_open_trial_limit_is_never_exceeded() {
    model(|| {
        let (breaker, _clock) = recovering(1, 5);
        let in_flight = Arc::new(AtomicUsize::new(0));
        let attempt = {
            let breaker = Arc::clone(&breaker);
            let in_flight = Arc::clone(&in_flight);
            move || {
                if let Ok(permit) = breaker.try_acquire() {
                    let running = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    assert!(running <= 1, "{running} trials in flight, limit 1");
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                    permit.record_ignored();
                }
            }
        };
        let other = thread::spawn(attempt.clone());
        let third = thread::spawn(attempt.clone());
        attempt();
        other.join().unwrap();
        third.join().unwrap();
        assert_eq!(breaker.state(), State::HalfOpen);
    });
}

/// Trials ending every way a call can end each give their slot back exactly
/// once: afterwards exactly `half_open_max_calls` trials fit again.
fn slots_come_back(first: End, second: End) {
    model(move || {
        let (breaker, _clock) = recovering(2, 3);
        let worker = {
            let breaker = Arc::clone(&breaker);
            thread::spawn(move || {
                if let Ok(permit) = breaker.try_acquire() {
                    end(permit, first);
                }
            })
        };
        if let Ok(permit) = breaker.try_acquire() {
            end(permit, second);
        }
        worker.join().unwrap();

        assert_eq!(breaker.state(), State::HalfOpen);
        let one = breaker.try_acquire().expect("first slot is free");
        let two = breaker.try_acquire().expect("second slot is free");
        assert!(breaker.try_acquire().is_err(), "only two slots exist");
        drop((one, two));
    });
}

#[test]
fn dropped_and_ignored_trials_release_their_slots_once() {
    slots_come_back(End::Drop, End::Ignored);
}

#[test]
fn succeeding_and_dropped_trials_release_their_slots_once() {
    slots_come_back(End::Success, End::Drop);
}

/// Two failing trials reopen the breaker exactly once, and the next
/// half-open period starts with all of its slots free.
///
/// A panicking trial takes the same path (its permit's drop records a
/// failure), but loom cannot run its primitives during unwinding, so panics
/// are covered by `tests/panics_and_cancellation.rs` and the property test.
#[test]
fn failing_trials_reopen_exactly_once() {
    model(|| {
        let (breaker, clock) = recovering(2, 3);
        let worker = {
            let breaker = Arc::clone(&breaker);
            thread::spawn(move || {
                if let Ok(permit) = breaker.try_acquire() {
                    end(permit, End::Failure);
                }
            })
        };
        if let Ok(permit) = breaker.try_acquire() {
            end(permit, End::Failure);
        }
        worker.join().unwrap();
        let metrics = breaker.metrics();
        assert_eq!(breaker.state(), State::Open);
        // One open from the initial trip, and exactly one reopen, however
        // the two failures interleave.
        assert_eq!(metrics.times_opened, 2);
        assert_eq!(metrics.times_half_opened, 1);

        clock.advance(Duration::from_secs(1));
        let one = breaker.try_acquire().expect("first slot of the new period");
        let two = breaker
            .try_acquire()
            .expect("second slot of the new period");
        assert!(breaker.try_acquire().is_err(), "only two slots exist");
        drop((one, two));
    });
}

/// Two failures racing past `failure_threshold` trip the breaker once, and
/// the hook sees exactly one transition.
#[test]
fn a_trip_is_applied_exactly_once() {
    model(|| {
        let breaker = Arc::new(CircuitBreaker::new(
            "loom",
            Config::builder().failure_threshold(2).build().unwrap(),
        ));
        let seen = Arc::new(AtomicUsize::new(0));
        {
            let seen = Arc::clone(&seen);
            breaker.on_transition(move |_| {
                seen.fetch_add(1, Ordering::SeqCst);
            });
        }
        let first = breaker.try_acquire().unwrap();
        let second = breaker.try_acquire().unwrap();
        let worker = thread::spawn({
            let breaker = Arc::clone(&breaker);
            move || breaker.record_failure()
        });
        first.record_failure();
        second.record_failure();
        worker.join().unwrap();
        assert_eq!(breaker.state(), State::Open);
        assert_eq!(breaker.metrics().times_opened, 1);
        assert_eq!(seen.load(Ordering::SeqCst), 1);
    });
}

/// Two calls arriving after the recovery timeout move the breaker to
/// half-open once.
#[test]
fn recovery_to_half_open_happens_once() {
    model(|| {
        let (breaker, _clock) = recovering(2, 1);
        let worker = {
            let breaker = Arc::clone(&breaker);
            thread::spawn(move || breaker.try_acquire().map(drop).is_ok())
        };
        let here = breaker.try_acquire().map(drop).is_ok();
        let there = worker.join().unwrap();
        assert!(here && there, "two slots, two callers");
        assert_eq!(breaker.metrics().times_half_opened, 1);
    });
}

/// A failure from a call admitted before a reset belongs to the old period:
/// whichever of the two lands first, the breaker ends closed with no
/// failures counted.
#[test]
fn a_stale_failure_never_trips_the_new_period() {
    model(|| {
        let breaker = Arc::new(CircuitBreaker::new(
            "loom",
            Config::builder().failure_threshold(1).build().unwrap(),
        ));
        let permit = breaker.try_acquire().unwrap();
        let resetter = {
            let breaker = Arc::clone(&breaker);
            thread::spawn(move || breaker.reset())
        };
        permit.record_failure();
        resetter.join().unwrap();
        assert_eq!(breaker.state(), State::Closed);
        assert_eq!(breaker.metrics().consecutive_failures, 0);
    });
}

/// A trial admitted in a half-open period that fails around a reset: if the
/// failure lands first it reopens and the reset closes; if the reset lands
/// first the failure is stale. Either way the breaker ends closed: a stale
/// failure that reopened it would leave it open.
#[test]
fn a_stale_trial_failure_never_reopens() {
    model(|| {
        let (breaker, _clock) = recovering(1, 1);
        let trial = breaker.try_acquire().unwrap();
        assert_eq!(breaker.state(), State::HalfOpen);
        let resetter = {
            let breaker = Arc::clone(&breaker);
            thread::spawn(move || breaker.reset())
        };
        trial.record_failure();
        resetter.join().unwrap();
        assert_eq!(breaker.state(), State::Closed);
    });
}

/// A closed-period outcome racing a reset: the reset's new period starts
/// with an empty window, whichever lands first. Before the window admitted
/// writers per period, the failure could pass its period check, the reset
/// clear the window, and the failure land in the new period's window.
#[test]
fn a_stale_outcome_never_enters_the_new_periods_window() {
    model(|| {
        let breaker = Arc::new(CircuitBreaker::new(
            "loom",
            Config::builder()
                .failure_threshold(10)
                .failure_rate_threshold(1.0)
                .window_size(2)
                .minimum_calls(2)
                .build()
                .unwrap(),
        ));
        let permit = breaker.try_acquire().unwrap();
        let resetter = {
            let breaker = Arc::clone(&breaker);
            thread::spawn(move || breaker.reset())
        };
        permit.record_failure();
        resetter.join().unwrap();
        let metrics = breaker.metrics();
        assert_eq!(breaker.state(), State::Closed);
        assert_eq!(
            metrics.failure_rate, None,
            "the new window is empty: {metrics:?}"
        );
        assert_eq!(metrics.consecutive_failures, 0);
    });
}

/// The same with a time window, and an outcome of the new period racing in
/// too: the new window holds exactly the new period's outcome.
#[test]
fn a_time_window_takes_only_its_own_periods_outcomes() {
    model(|| {
        let breaker = Arc::new(CircuitBreaker::new(
            "loom",
            Config::builder()
                .failure_threshold(10)
                .failure_rate_threshold(1.0)
                .window_duration(Duration::from_secs(10))
                .minimum_calls(3)
                .clock(ManualClock::new())
                .build()
                .unwrap(),
        ));
        let stale = breaker.try_acquire().unwrap();
        let resetter = {
            let breaker = Arc::clone(&breaker);
            thread::spawn(move || {
                breaker.reset();
                breaker.record_success();
            })
        };
        stale.record_failure();
        resetter.join().unwrap();
        assert_eq!(breaker.metrics().failure_rate, Some(0.0));
    });
}

/// Every transition outlasts every timeout (a hook moves the clock past
/// them), and two threads race through admission: each call returns, having
/// moved the breaker from open to half-open at most once and timed out at
/// most one half-open period. Before the admission loop was bounded, one
/// call could flip the breaker between open and half-open without end.
#[test]
fn admission_returns_when_every_transition_outlasts_every_timeout() {
    model(|| {
        let clock = ManualClock::new();
        let breaker = Arc::new(CircuitBreaker::new(
            "loom",
            Config::builder()
                .failure_threshold(1)
                .half_open_max_calls(1)
                .success_threshold(2)
                .recovery_timeout(Duration::from_nanos(1))
                .max_recovery_timeout(Duration::from_nanos(1))
                .half_open_timeout(Duration::from_nanos(1))
                .clock(clock.clone())
                .build()
                .unwrap(),
        ));
        breaker.record_failure();
        clock.advance(Duration::from_secs(1));
        breaker.on_transition(move |_| clock.advance(Duration::from_secs(1)));
        let attempt = {
            let breaker = Arc::clone(&breaker);
            move || {
                if let Ok(permit) = breaker.try_acquire() {
                    permit.record_ignored();
                }
            }
        };
        let other = thread::spawn(attempt.clone());
        attempt();
        other.join().unwrap();
        let metrics = breaker.metrics();
        assert!(metrics.times_half_opened <= 2, "{metrics:?}");
        assert!(
            metrics.times_opened <= 3,
            "the trip and two timeouts: {metrics:?}"
        );
    });
}

/// The only trial fails while another call asks for a slot: the period ends
/// with that failure, so the other call is rejected whichever lands first.
/// (The failing trial used to give its slot back before reopening, and a
/// second trial could run against a dependency that had just failed.)
#[test]
fn no_trial_is_admitted_after_the_only_trial_failed() {
    model(|| {
        let (breaker, _clock) = recovering(1, 1);
        let trial = breaker.try_acquire().unwrap();
        assert_eq!(breaker.state(), State::HalfOpen);
        let other = {
            let breaker = Arc::clone(&breaker);
            thread::spawn(move || {
                breaker
                    .try_acquire()
                    .map(|permit| permit.admitted_in())
                    .ok()
            })
        };
        trial.record_failure();
        assert_eq!(other.join().unwrap(), None, "a second trial was admitted");
    });
}

/// A success and a failure land together on a run of one failure: taken in
/// either order the run is then at most one long, so one more failure does
/// not trip a threshold of three. (The success's reset was one
/// compare-and-swap, dropped when the failure's count landed in between.)
#[test]
fn a_success_racing_a_failure_is_not_lost() {
    model(|| {
        let breaker = Arc::new(CircuitBreaker::new(
            "loom",
            Config::builder().failure_threshold(3).build().unwrap(),
        ));
        breaker.record_failure();
        let other = {
            let breaker = Arc::clone(&breaker);
            thread::spawn(move || breaker.record_failure())
        };
        breaker.record_success();
        other.join().unwrap();
        let run = breaker.metrics().consecutive_failures;
        assert!(run <= 1, "{run} failures in a row after F || S from 1");
        breaker.record_failure();
        assert_eq!(breaker.state(), State::Closed);
    });
}

/// A count window of `calls` outcomes, judged once full, tripping at
/// failure rate `rate`; consecutive failures never trip it.
fn rules(rate: f64, calls: u32) -> Config {
    Config::builder()
        .failure_threshold(100)
        .failure_rate_threshold(rate)
        .window_size(calls)
        .minimum_calls(calls)
        .build()
        .unwrap()
}

/// A windowed call races a reconfiguration whose rules, mixed with the old
/// ones, would trip the breaker where neither would: the old rules (rate
/// 1.0 over 2 calls) and the new (rate 0.5 over at least 4 calls) both
/// leave one failure in two calls alone, but the new rate with the old
/// minimum would not. The call judges by one configuration or the other,
/// never by a mix.
#[test]
fn a_call_racing_a_reconfiguration_judges_by_one_configuration() {
    model(|| {
        let breaker = Arc::new(CircuitBreaker::new("loom", rules(1.0, 2)));
        breaker.record_success();
        let reconfigurer = {
            let breaker = Arc::clone(&breaker);
            thread::spawn(move || breaker.reconfigure(rules(0.5, 4)))
        };
        breaker.record_failure();
        reconfigurer.join().unwrap();
        assert_eq!(breaker.state(), State::Closed);
        assert_eq!(breaker.config().minimum_calls(), 4);
    });
}

/// A windowed call picks the old window while a reconfiguration swaps in
/// a smaller one with looser rules. The old window's tally judged by the
/// new rules would trip (5 failures in 7, against 0.6 from 2 calls), but
/// neither configuration trips on its own window: the call must not judge
/// by the mix of one's window and the other's rules.
#[test]
fn a_call_never_judges_the_old_window_by_the_new_rules() {
    model(|| {
        let breaker = Arc::new(CircuitBreaker::new("loom", rules(0.9, 8)));
        for _ in 0..4 {
            breaker.record_failure();
        }
        breaker.record_success();
        breaker.record_success();
        let reconfigurer = {
            let breaker = Arc::clone(&breaker);
            thread::spawn(move || breaker.reconfigure(rules(0.6, 2)))
        };
        breaker.record_failure();
        reconfigurer.join().unwrap();
        assert_eq!(breaker.state(), State::Closed);
    });
}

/// A breaker limited to `max_concurrent_calls` calls at once.
fn limited(max_concurrent_calls: u32) -> Arc<CircuitBreaker> {
    let config = Config::builder()
        .max_concurrent_calls(max_concurrent_calls)
        .clock(ManualClock::new())
        .build()
        .unwrap();
    Arc::new(CircuitBreaker::new("loom", config))
}

/// Three calls race for two concurrency slots and end each its own way (a
/// success, a dropped permit, a failure): the calls running at once,
/// counted inside the "call", never pass the limit, and every slot comes
/// back exactly once, so afterwards exactly two calls fit again.
#[test]
fn concurrency_limit_is_never_exceeded_and_every_slot_comes_back() {
    model(|| {
        let breaker = limited(2);
        let running = Arc::new(AtomicUsize::new(0));
        let call = |how: End| {
            let breaker = Arc::clone(&breaker);
            let running = Arc::clone(&running);
            move || {
                if let Ok(permit) = breaker.try_acquire() {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    assert!(now <= 2, "{now} calls running, limit 2");
                    running.fetch_sub(1, Ordering::SeqCst);
                    end(permit, how);
                }
            }
        };
        let dropped = thread::spawn(call(End::Drop));
        let failed = thread::spawn(call(End::Failure));
        call(End::Success)();
        dropped.join().unwrap();
        failed.join().unwrap();

        assert_eq!(breaker.state(), State::Closed);
        let one = breaker.try_acquire().expect("first slot is free");
        let two = breaker.try_acquire().expect("second slot is free");
        let full = breaker.try_acquire().expect_err("only two slots exist");
        assert!(full.is_concurrency_limit());
        drop((one, two));
    });
}
