//! Transition hooks of a breaker and of a registry: what they see, that they
//! may use the breaker from inside, and that a panicking hook is contained.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use circuit_runtime::{
    CallError, CircuitBreaker, Config, ManualClock, Registry, State, Transition, TransitionCause,
};

fn config(clock: &ManualClock) -> Config {
    Config::builder()
        .failure_threshold(1)
        .recovery_timeout(Duration::from_secs(10))
        .clock(clock.clone())
        .build()
        .unwrap()
}

/// A hook that appends every transition to the returned log.
fn recorder() -> (
    Arc<Mutex<Vec<Transition>>>,
    impl Fn(&Transition) + Send + Sync + 'static,
) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&log);
    (log, move |t: &Transition| {
        sink.lock().unwrap().push(t.clone());
    })
}

fn counter() -> (
    Arc<AtomicUsize>,
    impl Fn(&Transition) + Send + Sync + 'static,
) {
    let count = Arc::new(AtomicUsize::new(0));
    let sink = Arc::clone(&count);
    (count, move |_: &Transition| {
        sink.fetch_add(1, Ordering::SeqCst);
    })
}

/// Runs `f` on another thread and fails the test, rather than hanging it,
/// if `f` has not returned within a generous bound (a deadlock).
fn without_deadlock(f: impl FnOnce() + Send + 'static) {
    common::returns_within("deadlock: the hook", Duration::from_secs(30), f);
}

#[test]
fn breaker_hook_sees_every_transition_with_name_states_time_and_cause() {
    let clock = ManualClock::new();
    let breaker = CircuitBreaker::new("ledger", config(&clock));
    let (log, hook) = recorder();
    breaker.on_transition(hook);
    let mut expected: Vec<(State, State, Instant, TransitionCause)> = Vec::new();

    clock.advance(Duration::from_secs(1));
    breaker.record_failure();
    expected.push((
        State::Closed,
        State::Open,
        clock.now(),
        TransitionCause::ConsecutiveFailures,
    ));

    clock.advance(Duration::from_secs(10));
    let trial = breaker.try_acquire().unwrap();
    expected.push((
        State::Open,
        State::HalfOpen,
        clock.now(),
        TransitionCause::RecoveryTimeoutElapsed,
    ));
    clock.advance(Duration::from_millis(300));
    trial.record_failure();
    expected.push((
        State::HalfOpen,
        State::Open,
        clock.now(),
        TransitionCause::TrialFailed,
    ));

    clock.advance(Duration::from_secs(10));
    breaker.try_acquire().unwrap().record_success();
    expected.push((
        State::Open,
        State::HalfOpen,
        clock.now(),
        TransitionCause::RecoveryTimeoutElapsed,
    ));
    expected.push((
        State::HalfOpen,
        State::Closed,
        clock.now(),
        TransitionCause::TrialsSucceeded,
    ));

    clock.advance(Duration::from_secs(1));
    breaker.force_open();
    expected.push((
        State::Closed,
        State::ForcedOpen,
        clock.now(),
        TransitionCause::ForcedOpen,
    ));
    clock.advance(Duration::from_secs(1));
    breaker.disable();
    expected.push((
        State::ForcedOpen,
        State::Disabled,
        clock.now(),
        TransitionCause::Disabled,
    ));
    clock.advance(Duration::from_secs(1));
    breaker.reset();
    expected.push((
        State::Disabled,
        State::Closed,
        clock.now(),
        TransitionCause::Reset,
    ));

    let log = log.lock().unwrap();
    assert!(log.iter().all(|t| t.name == "ledger"));
    let seen: Vec<_> = log.iter().map(|t| (t.from, t.to, t.at, t.cause)).collect();
    assert_eq!(seen, expected);
}

#[test]
fn hooks_see_the_half_open_timeout_and_rate_causes() {
    let clock = ManualClock::new();
    let breaker = CircuitBreaker::new(
        "causes",
        Config::builder()
            .failure_threshold(100)
            .failure_rate_threshold(0.5)
            .window_size(2)
            .minimum_calls(2)
            .recovery_timeout(Duration::from_secs(10))
            .half_open_timeout(Duration::from_secs(3))
            .clock(clock.clone())
            .build()
            .unwrap(),
    );
    let (log, hook) = recorder();
    breaker.on_transition(hook);
    breaker.record_success();
    breaker.record_failure();
    clock.advance(Duration::from_secs(10));
    let _hung = breaker.try_acquire().unwrap();
    clock.advance(Duration::from_secs(3));
    assert!(breaker.try_acquire().is_err());
    let causes: Vec<_> = log.lock().unwrap().iter().map(|t| t.cause).collect();
    assert_eq!(
        causes,
        [
            TransitionCause::FailureRate,
            TransitionCause::RecoveryTimeoutElapsed,
            TransitionCause::HalfOpenTimeout,
        ]
    );
}

#[test]
fn hooks_run_only_when_the_state_changes() {
    let clock = ManualClock::new();
    let breaker = CircuitBreaker::new("quiet", config(&clock));
    let (count, hook) = counter();
    breaker.on_transition(hook);
    breaker.reset();
    breaker.record_success();
    assert_eq!(
        count.load(Ordering::SeqCst),
        0,
        "closed to closed is no change"
    );
    breaker.force_open();
    breaker.force_open();
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[test]
fn every_hook_of_a_breaker_runs_in_order() {
    let clock = ManualClock::new();
    let breaker = CircuitBreaker::new("ordered", config(&clock));
    let order = Arc::new(Mutex::new(Vec::new()));
    for id in 0..3 {
        let order = Arc::clone(&order);
        breaker.on_transition(move |_| order.lock().unwrap().push(id));
    }
    breaker.record_failure();
    assert_eq!(*order.lock().unwrap(), [0, 1, 2]);
}

#[test]
fn registry_hook_applies_to_breakers_created_before_and_after_it() {
    let registry = Registry::new();
    let clock = ManualClock::new();
    let early = registry.get_or_create("early", config(&clock));
    let (log, hook) = recorder();
    registry.on_transition(hook);
    let late = registry.get_or_create("late", config(&clock));

    clock.advance(Duration::from_secs(2));
    early.record_failure();
    late.force_open();
    let seen: Vec<_> = log
        .lock()
        .unwrap()
        .iter()
        .map(|t| (t.name, t.from, t.to, t.at))
        .collect();
    assert_eq!(
        seen,
        [
            ("early", State::Closed, State::Open, clock.now()),
            ("late", State::Closed, State::ForcedOpen, clock.now()),
        ]
    );
}

#[test]
fn registry_and_breaker_hooks_both_run() {
    let registry = Registry::new();
    let clock = ManualClock::new();
    let (registry_count, registry_hook) = counter();
    registry.on_transition(registry_hook);
    let breaker = registry.get_or_create("both", config(&clock));
    let (breaker_count, breaker_hook) = counter();
    breaker.on_transition(breaker_hook);
    breaker.record_failure();
    assert_eq!(registry_count.load(Ordering::SeqCst), 1);
    assert_eq!(breaker_count.load(Ordering::SeqCst), 1);
}

#[test]
fn registry_hooks_do_not_leak_to_other_registries_or_standalone_breakers() {
    let clock = ManualClock::new();
    let registry = Registry::new();
    let (count, hook) = counter();
    registry.on_transition(hook);
    Registry::new()
        .get_or_create("elsewhere", config(&clock))
        .record_failure();
    CircuitBreaker::new("standalone", config(&clock)).record_failure();
    assert_eq!(count.load(Ordering::SeqCst), 0);
}

#[test]
fn a_hook_may_read_and_call_its_breaker_without_deadlock() {
    without_deadlock(|| {
        let clock = ManualClock::new();
        let breaker = Arc::new(CircuitBreaker::new("reentrant", config(&clock)));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handle: Weak<CircuitBreaker> = Arc::downgrade(&breaker);
        let sink = Arc::clone(&seen);
        breaker.on_transition(move |t| {
            let breaker = handle.upgrade().expect("the breaker is alive");
            // The transition is committed before hooks run.
            assert_eq!(breaker.state(), t.to);
            let metrics = breaker.metrics();
            let outcome = breaker
                .call(|| Ok::<_, ()>(()))
                .map_err(|e| e.is_rejected());
            breaker.on_transition(|_| {});
            sink.lock()
                .unwrap()
                .push((t.to, metrics.times_opened, outcome));
        });

        breaker.record_failure();
        let seen = seen.lock().unwrap();
        assert_eq!(seen[0].0, State::Open);
        assert_eq!(seen[0].1, 1, "metrics read inside the hook");
        assert_eq!(
            seen[0].2,
            Err(true),
            "the open breaker rejected the hook's call"
        );
    });
}

#[test]
fn a_hook_may_reset_the_breaker_that_called_it() {
    without_deadlock(|| {
        let clock = ManualClock::new();
        let breaker = Arc::new(CircuitBreaker::new("self-healing", config(&clock)));
        let handle = Arc::downgrade(&breaker);
        let (log, record) = recorder();
        breaker.on_transition(record);
        breaker.on_transition(move |t| {
            if t.to == State::Open {
                handle.upgrade().unwrap().reset();
            }
        });

        let result = breaker.call(|| Err::<(), _>("down"));
        assert_eq!(result, Err(CallError::Failed("down")));
        assert_eq!(breaker.state(), State::Closed, "the hook reset it");
        let seen: Vec<_> = log.lock().unwrap().iter().map(|t| (t.from, t.to)).collect();
        assert_eq!(
            seen,
            [(State::Closed, State::Open), (State::Open, State::Closed)]
        );
        breaker.call(|| Ok::<_, ()>(())).unwrap();
    });
}

#[test]
fn a_registry_hook_may_use_the_registry_and_its_breakers() {
    without_deadlock(|| {
        let registry = Arc::new(Registry::new());
        let clock = ManualClock::new();
        let handle = Arc::downgrade(&registry);
        let open = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&open);
        registry.on_transition(move |t| {
            let registry = handle.upgrade().unwrap();
            let breaker = registry.get(t.name).unwrap();
            let _ = breaker.metrics();
            let _ = registry.snapshots();
            sink.lock().unwrap().push(registry.open_circuits());
        });
        registry
            .get_or_create("watched", config(&clock))
            .record_failure();
        assert_eq!(*open.lock().unwrap(), [["watched"]]);
        assert_eq!(registry.reset_all(), 1);
    });
}

#[test]
fn a_panicking_hook_does_not_poison_the_breaker() {
    let clock = ManualClock::new();
    let breaker = CircuitBreaker::new("fragile", config(&clock));
    breaker.on_transition(|t| panic!("hook failed on {} -> {}", t.from, t.to));
    let (count, hook) = counter();
    breaker.on_transition(hook);

    let result = breaker.call(|| Err::<(), _>("down"));
    assert_eq!(
        result,
        Err(CallError::Failed("down")),
        "the hook's panic does not reach the caller"
    );
    assert_eq!(breaker.state(), State::Open, "the transition was committed");
    assert_eq!(count.load(Ordering::SeqCst), 1, "the later hook still ran");

    clock.advance(Duration::from_secs(10));
    breaker.call(|| Ok::<_, ()>(())).unwrap();
    assert_eq!(breaker.state(), State::Closed, "the breaker keeps working");
    assert_eq!(count.load(Ordering::SeqCst), 3);
    breaker.force_open();
    breaker.reset();
    assert_eq!(count.load(Ordering::SeqCst), 5);
    assert_eq!(breaker.metrics().failed_calls, 1);
}

#[test]
fn a_panicking_registry_hook_does_not_stop_the_breakers_own_hooks() {
    let clock = ManualClock::new();
    let registry = Registry::new();
    registry.on_transition(|_| panic!("registry hook failed"));
    let breaker = registry.get_or_create("fragile", config(&clock));
    let (count, hook) = counter();
    breaker.on_transition(hook);
    breaker.record_failure();
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(count.load(Ordering::SeqCst), 1);
    assert_eq!(registry.open_circuits(), ["fragile"]);
}

#[test]
fn a_hook_panicking_while_a_panicking_call_unwinds_does_not_abort() {
    let clock = ManualClock::new();
    let breaker = CircuitBreaker::new("double-fault", config(&clock));
    breaker.on_transition(|_| panic!("hook failed during unwinding"));
    let (count, hook) = counter();
    breaker.on_transition(hook);

    let unwound = catch_unwind(AssertUnwindSafe(|| {
        breaker.call(|| -> Result<(), ()> { panic!("the call blew up") })
    }));
    let payload = unwound.expect_err("the call's panic keeps unwinding");
    assert_eq!(
        payload.downcast_ref::<&str>(),
        Some(&"the call blew up"),
        "the caller sees the call's panic, not the hook's"
    );
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(count.load(Ordering::SeqCst), 1);
}
