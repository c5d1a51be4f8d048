//! `max_concurrent_calls`: at most that many calls of a breaker run at
//! once, the excess is rejected at once (typed, counted apart, sent to the
//! fallback), and every slot comes back whichever way its call ends.

mod common;

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use circuit_runtime::{
    circuit_breaker, CallError, CircuitBreaker, CircuitOpenError, Config, ConfigBuilder, Event,
    Registry, State,
};
use futures::executor::block_on;

#[path = "common/api.rs"]
mod api;
use api::{registered, ApiError};

#[path = "common/poll.rs"]
mod poll;
use poll::poll_once;

fn limited(limit: u32) -> CircuitBreaker {
    limited_with(Config::builder().max_concurrent_calls(limit)).0
}

fn limited_with(builder: ConfigBuilder) -> (CircuitBreaker, circuit_runtime::ManualClock) {
    common::manual_breaker("bulkhead", builder)
}

fn assert_at_limit(rejection: &CircuitOpenError, state: State) {
    assert!(rejection.is_concurrency_limit(), "{rejection:?}");
    assert_eq!(rejection.state(), state);
    assert_eq!(rejection.retry_after(), None);
}

#[test]
fn at_most_the_limit_runs_and_an_ended_call_frees_its_slot() {
    let breaker = limited(2);
    let first = breaker.try_acquire().unwrap();
    let second = breaker.try_acquire().unwrap();
    let rejection = breaker.try_acquire().unwrap_err();
    assert_at_limit(&rejection, State::Closed);

    first.record_success();
    let third = breaker
        .try_acquire()
        .expect("the ended call's slot is free");
    assert!(breaker.try_acquire().is_err(), "two running again");
    second.record_failure();
    third.record_ignored();
    let one = breaker.try_acquire().unwrap();
    let two = breaker.try_acquire().unwrap();
    assert!(breaker.try_acquire().is_err());
    drop((one, two));
    assert_eq!(breaker.config().max_concurrent_calls(), Some(2));
}

#[test]
fn without_the_option_nothing_is_limited() {
    let breaker = CircuitBreaker::new("bulkhead.unlimited", Config::default());
    assert_eq!(breaker.config().max_concurrent_calls(), None);
    let permits: Vec<_> = (0..1000).map(|_| breaker.try_acquire().unwrap()).collect();
    drop(permits);
    assert_eq!(breaker.metrics().bulkhead_rejected, 0);
}

#[test]
fn the_rejection_is_typed_and_counted_apart_from_open_rejections() {
    let breaker = limited(1);
    let running = breaker.try_acquire().unwrap();
    let result = breaker.call(|| Ok::<_, ApiError>("never runs"));
    let Err(CallError::Rejected(rejection)) = result else {
        panic!("expected a rejection, got {result:?}");
    };
    assert_at_limit(&rejection, State::Closed);
    assert_eq!(
        rejection.to_string(),
        "circuit breaker 'bulkhead' is at its limit of concurrent calls"
    );
    assert_eq!(
        ApiError::from(rejection),
        ApiError::Unavailable,
        "it converts like any rejection"
    );

    let metrics = breaker.metrics();
    assert_eq!(metrics.bulkhead_rejected, 1);
    assert_eq!(metrics.rejected_calls, 0);
    assert_eq!(metrics.total_calls, 0, "a rejected call did not run");

    running.record_success();
    breaker.force_open();
    let open = breaker.try_acquire().unwrap_err();
    assert!(!open.is_concurrency_limit());
    assert_eq!(breaker.metrics().rejected_calls, 1);
    assert_eq!(breaker.metrics().bulkhead_rejected, 1);
}

#[test]
fn observers_get_a_rejection_event_they_can_tell_apart() {
    let breaker = limited(1);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    breaker.on_event(move |event: &Event| {
        if let Event::Rejection(rejection) = event {
            sink.lock()
                .unwrap()
                .push((rejection.is_concurrency_limit(), event.to_string()));
        }
    });
    let _running = breaker.try_acquire().unwrap();
    let _ = breaker.try_acquire();
    assert_eq!(
        *seen.lock().unwrap(),
        [(
            true,
            "circuit breaker 'bulkhead' rejected a call: it is at its limit of concurrent calls"
                .to_owned()
        )]
    );
}

#[test]
fn the_limit_holds_in_a_disabled_breaker() {
    let breaker = limited(1);
    breaker.disable();
    let _running = breaker.try_acquire().unwrap();
    assert_at_limit(&breaker.try_acquire().unwrap_err(), State::Disabled);
}

#[test]
fn calls_on_other_threads_hold_their_slots_until_they_return() {
    let breaker = limited(2);
    let inside = Barrier::new(3);
    let leave = Barrier::new(3);
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                breaker
                    .call(|| {
                        inside.wait();
                        leave.wait();
                        Ok::<_, ApiError>(())
                    })
                    .unwrap();
            });
        }
        inside.wait();
        let result = breaker.call(|| Ok::<_, ApiError>(()));
        assert!(
            matches!(&result, Err(CallError::Rejected(r)) if r.is_concurrency_limit()),
            "{result:?}"
        );
        leave.wait();
    });
    assert_eq!(breaker.call(|| Ok::<_, ApiError>(7)), Ok(7));
    assert_eq!(breaker.metrics().successful_calls, 3);
}

#[test]
fn a_panicking_call_gives_its_slot_back() {
    let breaker = limited(1);
    let unwound = catch_unwind(AssertUnwindSafe(|| {
        breaker.call(|| -> Result<(), ApiError> { panic!("the call blew up") })
    }));
    assert!(unwound.is_err());
    assert_eq!(
        breaker.metrics().failed_calls,
        1,
        "its own panic is a failure"
    );
    assert_eq!(
        breaker.call(|| Ok::<_, ApiError>(1)),
        Ok(1),
        "the slot is free"
    );
}

#[test]
fn a_cancelled_async_call_gives_its_slot_back() {
    let breaker = limited(1);
    {
        let mut call = pin!(breaker.call_async(std::future::pending::<Result<(), ApiError>>()));
        assert!(poll_once(call.as_mut()).is_pending());
        assert_at_limit(&breaker.try_acquire().unwrap_err(), State::Closed);
    }
    let metrics = breaker.metrics();
    assert_eq!(metrics.total_calls, 0, "a cancelled call counts as nothing");
    assert_eq!(
        block_on(breaker.call_async(async { Ok::<_, ApiError>(2) })),
        Ok(2)
    );
}

#[test]
fn a_dropped_permit_gives_its_slot_back() {
    let breaker = limited(1);
    drop(breaker.try_acquire().unwrap());
    drop(
        breaker
            .try_acquire()
            .expect("the dropped permit's slot is free"),
    );
}

/// A call admitted as a half-open trial that then finds every concurrency
/// slot taken is turned away and gives its trial slot back: repeated, an
/// unreturned trial slot would soon leave the period with none.
#[test]
fn a_trial_without_a_concurrency_slot_gives_its_trial_slot_back() {
    let (breaker, clock) = limited_with(
        Config::builder()
            .max_concurrent_calls(2)
            .half_open_max_calls(2)
            .success_threshold(3)
            .failure_threshold(1)
            .recovery_timeout(Duration::from_secs(10)),
    );
    let busy = [
        breaker.try_acquire().unwrap(),
        breaker.try_acquire().unwrap(),
    ];
    breaker.record_failure();
    assert_eq!(breaker.state(), State::Open);
    clock.advance(Duration::from_secs(10));

    for _ in 0..5 {
        assert_at_limit(&breaker.try_acquire().unwrap_err(), State::HalfOpen);
    }
    assert_eq!(breaker.state(), State::HalfOpen);
    drop(busy);

    let trials = [
        breaker.try_acquire().unwrap(),
        breaker.try_acquire().unwrap(),
    ];
    assert!(trials.iter().all(|t| t.admitted_in() == State::HalfOpen));
    let full = breaker.try_acquire().unwrap_err();
    assert!(
        !full.is_concurrency_limit(),
        "every trial slot is taken, by trials that run"
    );
    let metrics = breaker.metrics();
    assert_eq!((metrics.bulkhead_rejected, metrics.rejected_calls), (5, 1));
    for trial in trials {
        trial.record_success();
    }
    assert_eq!(breaker.metrics().trial_successes, 2);
}

#[test]
fn lowering_the_limit_lets_running_calls_finish_and_admits_below_it() {
    let breaker = limited(3);
    let running: Vec<_> = (0..3).map(|_| breaker.try_acquire().unwrap()).collect();
    assert!(breaker.reconfigure(Config::builder().max_concurrent_calls(1).build().unwrap()));
    let mut running = running.into_iter();
    assert!(breaker.try_acquire().is_err());
    running.next().unwrap().record_success();
    assert!(breaker.try_acquire().is_err(), "two still run, limit 1");
    running.next().unwrap().record_failure();
    assert!(breaker.try_acquire().is_err(), "one still runs, limit 1");
    drop(running);
    let only = breaker.try_acquire().expect("none runs");
    assert!(breaker.try_acquire().is_err());
    drop(only);
}

#[test]
fn raising_the_limit_admits_more_at_once() {
    let breaker = limited(1);
    let first = breaker.try_acquire().unwrap();
    assert!(breaker.try_acquire().is_err());
    breaker.reconfigure(Config::builder().max_concurrent_calls(3).build().unwrap());
    let more = [
        breaker.try_acquire().unwrap(),
        breaker.try_acquire().unwrap(),
    ];
    assert!(breaker.try_acquire().is_err());
    drop((first, more));
    let again: Vec<_> = (0..3).map(|_| breaker.try_acquire().unwrap()).collect();
    assert!(breaker.try_acquire().is_err());
    drop(again);
}

/// Calls admitted with a slot give it back after the limit is lifted, and
/// calls admitted without one give nothing back after it is set again: the
/// count neither leaks nor goes below zero (which would reject every call).
#[test]
fn lifting_and_setting_the_limit_with_calls_running_keeps_the_count_exact() {
    let breaker = limited(1);
    let with_slot = breaker.try_acquire().unwrap();
    breaker.reconfigure(Config::default());
    let without_slot = [
        breaker.try_acquire().unwrap(),
        breaker.try_acquire().unwrap(),
    ];
    with_slot.record_success();
    breaker.reconfigure(Config::builder().max_concurrent_calls(1).build().unwrap());
    drop(without_slot);

    let only = breaker.try_acquire().expect("no slot is held");
    assert_at_limit(&breaker.try_acquire().unwrap_err(), State::Closed);
    drop(only);
    assert!(breaker.try_acquire().is_ok());
}

// --- The attribute ------------------------------------------------------------

/// The outer call holds the only slot while it makes the inner one, which
/// is turned away into the fallback.
#[circuit_breaker(name = "bulkhead.sync", max_concurrent_calls = 1, fallback = busy)]
fn lookup(outer: bool) -> Result<&'static str, ApiError> {
    if outer {
        lookup(false)
    } else {
        Ok("ran")
    }
}

#[allow(clippy::unnecessary_wraps)]
fn busy(_outer: bool) -> Result<&'static str, ApiError> {
    Ok("fallback")
}

#[test]
fn the_attribute_sends_calls_beyond_the_limit_to_the_fallback() {
    assert_eq!(lookup(true), Ok("fallback"));
    assert_eq!(lookup(false), Ok("ran"), "the slot came back");
    let breaker = registered("bulkhead.sync");
    assert_eq!(breaker.config().max_concurrent_calls(), Some(1));
    let metrics = breaker.metrics();
    assert_eq!(metrics.bulkhead_rejected, 1);
    assert_eq!(metrics.fallbacks_after_rejection, 1);
    assert_eq!(metrics.successful_calls, 2);
}

/// Opened by the test when the call it holds may finish.
static GATE_OPEN: AtomicBool = AtomicBool::new(false);

/// Pending until [`GATE_OPEN`]: a call the test holds in flight.
struct Gate;

impl Future for Gate {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        if GATE_OPEN.load(Ordering::SeqCst) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

#[circuit_breaker(name = "bulkhead.async", max_concurrent_calls = 1, fallback = busy_async)]
async fn fetch(wait: bool) -> Result<&'static str, ApiError> {
    if wait {
        Gate.await;
    }
    Ok("ran")
}

#[allow(clippy::unused_async, clippy::unnecessary_wraps)]
async fn busy_async(_wait: bool) -> Result<&'static str, ApiError> {
    Ok("fallback")
}

#[test]
fn the_attribute_sends_async_calls_beyond_the_limit_to_the_fallback() {
    let mut held = pin!(fetch(true));
    assert!(poll_once(held.as_mut()).is_pending());
    assert_eq!(block_on(fetch(false)), Ok("fallback"));
    GATE_OPEN.store(true, Ordering::SeqCst);
    assert_eq!(poll_once(held.as_mut()), Poll::Ready(Ok("ran")));
    assert_eq!(block_on(fetch(false)), Ok("ran"), "the slot came back");
    let metrics = registered("bulkhead.async").metrics();
    assert_eq!(metrics.bulkhead_rejected, 1);
    assert_eq!(metrics.fallbacks_after_rejection, 1);
}

// --- Configuration files -------------------------------------------------------

#[test]
fn a_file_sets_the_limit_and_checks_its_range() {
    let registry = Registry::new();
    let db = registry.get_or_create("db", Config::default());
    registry
        .load_toml("[breakers.db]\nmax_concurrent_calls = 2\n")
        .unwrap();
    assert_eq!(db.config().max_concurrent_calls(), Some(2));
    let running = [db.try_acquire().unwrap(), db.try_acquire().unwrap()];
    assert_at_limit(&db.try_acquire().unwrap_err(), State::Closed);
    drop(running);

    let err = registry
        .load_toml("[breakers.db]\nmax_concurrent_calls = 0\n")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "<string>:2:24: [breakers.db] `max_concurrent_calls` must be at least 1, got 0: write \
         e.g. `max_concurrent_calls = 10`"
    );
    assert_eq!(db.config().max_concurrent_calls(), Some(2), "unchanged");
}

#[test]
fn the_builder_checks_the_range() {
    let err = Config::builder()
        .max_concurrent_calls(0)
        .build()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "`max_concurrent_calls` must be at least 1, got 0"
    );
    let most = Config::builder()
        .max_concurrent_calls(u32::MAX)
        .build()
        .unwrap();
    assert_eq!(most.max_concurrent_calls(), Some(u32::MAX));
}
