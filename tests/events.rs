//! Events beyond transitions: rejected calls, fallbacks, slow calls and
//! reconfigurations, seen by observers of a breaker and of a registry.

#[path = "common/api.rs"]
mod api;
mod common;

use std::panic::{catch_unwind, AssertUnwindSafe, RefUnwindSafe, UnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use api::{registered, ApiError};
use circuit_runtime::{
    circuit_breaker, registry, CallError, CircuitBreaker, Config, Event, FallbackReason,
    ManualClock, Registry, State,
};

type Log = Arc<Mutex<Vec<Event>>>;

/// A hook that appends every event to the returned log.
fn recorder() -> (Log, impl Fn(&Event) + Send + Sync + 'static) {
    let log = Log::default();
    let sink = Arc::clone(&log);
    (log, move |event: &Event| {
        sink.lock().unwrap().push(event.clone());
    })
}

fn taken(log: &Log) -> Vec<Event> {
    std::mem::take(&mut *log.lock().unwrap())
}

fn kinds(events: &[Event]) -> Vec<&'static str> {
    events.iter().map(Event::kind).collect()
}

fn config(clock: &ManualClock) -> Config {
    Config::builder()
        .failure_threshold(1)
        .recovery_timeout(Duration::from_secs(10))
        .clock(clock.clone())
        .build()
        .unwrap()
}

#[test]
fn a_breaker_stays_send_sync_and_unwind_safe_with_every_feature_on() {
    fn assert_traits<T: Send + Sync + UnwindSafe + RefUnwindSafe>() {}
    assert_traits::<CircuitBreaker>();
    assert_traits::<Event>();
}

#[test]
fn a_rejection_reports_the_state_and_the_time_until_the_next_trial() {
    let clock = ManualClock::new();
    let breaker = CircuitBreaker::new("events.rejection", config(&clock));
    let (log, hook) = recorder();
    breaker.on_event(hook);

    breaker.record_failure();
    clock.advance(Duration::from_secs(4));
    let returned = breaker.call(|| Ok::<_, ()>(())).unwrap_err();
    let events = taken(&log);
    assert_eq!(kinds(&events), ["transition", "rejection"]);
    let Event::Rejection(rejection) = &events[1] else {
        unreachable!()
    };
    assert_eq!(rejection.state(), State::Open);
    assert_eq!(rejection.retry_after(), Some(Duration::from_secs(6)));
    assert_eq!(
        CallError::<()>::Rejected(rejection.clone()),
        returned,
        "the observer sees what the caller got"
    );

    breaker.force_open();
    let _ = breaker.try_acquire();
    let events = taken(&log);
    let Event::Rejection(rejection) = &events[1] else {
        panic!("expected a rejection, got {events:?}")
    };
    assert_eq!(
        (rejection.state(), rejection.retry_after()),
        (State::ForcedOpen, None)
    );

    // Half-open with its one trial slot taken.
    breaker.reset();
    breaker.record_failure();
    clock.advance(Duration::from_secs(10));
    let trial = breaker.try_acquire().unwrap();
    let _ = breaker.try_acquire();
    drop(trial);
    let events = taken(&log);
    assert_eq!(
        kinds(&events),
        ["transition", "transition", "transition", "rejection"]
    );
    let Event::Rejection(rejection) = &events[3] else {
        unreachable!()
    };
    assert_eq!(
        (rejection.state(), rejection.retry_after()),
        (State::HalfOpen, None)
    );
    assert_eq!(
        events[3].to_string(),
        "circuit breaker 'events.rejection' rejected a call: it is half-open and every trial \
         slot is taken"
    );
}

#[test]
fn successful_calls_in_a_closed_breaker_are_no_events() {
    let breaker = CircuitBreaker::new("events.quiet", Config::default());
    let (log, hook) = recorder();
    breaker.on_event(hook);
    for _ in 0..100 {
        breaker.call(|| Ok::<_, ()>(())).unwrap();
    }
    let _ = breaker.call(|| Err::<(), _>(()));
    assert!(
        taken(&log).is_empty(),
        "a failure below the threshold is no event either"
    );
}

#[circuit_breaker(
    name = "events.fallback",
    failure_threshold = 1,
    fallback = cached_price,
    fallback_on = "any_error"
)]
fn price(fail: bool) -> Result<u32, ApiError> {
    if fail {
        Err(ApiError::Down)
    } else {
        Ok(101)
    }
}

#[allow(clippy::unnecessary_wraps)] // a fallback returns what the function does
fn cached_price(_fail: bool) -> Result<u32, ApiError> {
    Ok(100)
}

#[test]
fn a_fallback_reports_whether_the_call_failed_or_was_rejected() {
    let clock = ManualClock::new();
    registry().configure("events.fallback", config(&clock));
    assert_eq!(price(false), Ok(101));
    let (log, hook) = recorder();
    registered("events.fallback").on_event(hook);

    assert_eq!(price(true), Ok(100), "the failure went to the fallback");
    assert_eq!(price(false), Ok(100), "the rejection too");
    let events = taken(&log);
    assert_eq!(
        kinds(&events),
        ["transition", "fallback", "rejection", "fallback"]
    );
    let reasons: Vec<_> = events
        .iter()
        .filter_map(|event| match event {
            Event::Fallback(fallback) => Some(fallback.reason),
            _ => None,
        })
        .collect();
    assert_eq!(reasons, [FallbackReason::Failed, FallbackReason::Rejected]);
    assert_eq!(
        events[3].to_string(),
        "circuit breaker 'events.fallback' ran its fallback: the call rejected"
    );

    let metrics = registered("events.fallback").metrics();
    assert_eq!(
        (
            metrics.fallbacks_after_failure,
            metrics.fallbacks_after_rejection
        ),
        (1, 1)
    );
}

#[circuit_breaker(name = "events.async_fallback", fallback = cached_quote)]
async fn quote() -> Result<u32, ApiError> {
    Ok(7)
}

#[allow(clippy::unused_async)] // a fallback of an `async fn` is one too
async fn cached_quote() -> Result<u32, ApiError> {
    Ok(6)
}

#[test]
fn an_async_fallback_is_counted_as_it_runs() {
    registry().configure("events.async_fallback", Config::default());
    let breaker = registry().get_or_create("events.async_fallback", Config::default());
    let (log, hook) = recorder();
    breaker.on_event(hook);
    breaker.force_open();
    assert_eq!(futures::executor::block_on(quote()), Ok(6));
    assert_eq!(kinds(&taken(&log)), ["transition", "rejection", "fallback"]);
    assert_eq!(breaker.metrics().fallbacks_after_rejection, 1);
}

#[test]
fn a_slow_call_reports_its_duration_and_the_threshold_it_reached() {
    let clock = ManualClock::new();
    let config = Config::builder()
        .slow_call_duration(Duration::from_millis(500))
        .clock(clock.clone())
        .build()
        .unwrap();
    let breaker = CircuitBreaker::new("events.slow", config);
    let (log, hook) = recorder();
    breaker.on_event(hook);

    let call_taking = |took: Duration, ok: bool| {
        let _ = breaker.call(|| {
            clock.advance(took);
            if ok {
                Ok(())
            } else {
                Err(())
            }
        });
    };
    call_taking(Duration::from_millis(499), true);
    assert!(
        taken(&log).is_empty(),
        "a call under the threshold is not slow"
    );
    call_taking(Duration::from_millis(500), true);
    call_taking(Duration::from_secs(2), false);
    let events = taken(&log);
    let slow: Vec<_> = events
        .iter()
        .map(|event| match event {
            Event::SlowCall(slow) => (slow.name, slow.duration, slow.threshold),
            other => panic!("expected slow calls only, got {other:?}"),
        })
        .collect();
    let threshold = Duration::from_millis(500);
    assert_eq!(
        slow,
        [
            ("events.slow", Duration::from_millis(500), threshold),
            ("events.slow", Duration::from_secs(2), threshold),
        ],
        "a failed call can be slow too"
    );
    assert_eq!(breaker.metrics().slow_calls, 2);
}

#[test]
fn a_reconfiguration_names_the_options_that_changed() {
    let registry = Registry::new();
    let (log, hook) = recorder();
    registry.on_event(hook);
    let breaker = registry.get_or_create("events.reconfigured", Config::default());

    let tighter = Config::builder()
        .failure_threshold(2)
        .recovery_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    registry.configure("events.reconfigured", tighter.clone());
    registry.configure("events.reconfigured", tighter.clone());
    assert!(!breaker.reconfigure(tighter), "the same options again");
    let events = taken(&log);
    assert_eq!(events.len(), 1, "only a change is an event: {events:?}");
    let Event::Reconfiguration(change) = &events[0] else {
        unreachable!()
    };
    assert_eq!(change.changed, ["failure_threshold", "recovery_timeout"]);
    assert_eq!(change.config.failure_threshold(), 2);
    assert_eq!(
        events[0].to_string(),
        "circuit breaker 'events.reconfigured' was reconfigured: failure_threshold, \
         recovery_timeout changed"
    );

    registry.remove("events.reconfigured");
    let breaker = registry.get_or_create("events.reconfigured", Config::default());
    registry
        .load_toml("[breakers.\"events.reconfigured\"]\nhalf_open_max_calls = 3\n")
        .unwrap();
    let events = taken(&log);
    assert_eq!(
        kinds(&events),
        ["reconfiguration"],
        "a file load reconfigures too"
    );
    let Event::Reconfiguration(change) = &events[0] else {
        unreachable!()
    };
    assert_eq!(change.changed, ["half_open_max_calls"]);
    assert_eq!(breaker.config().half_open_max_calls(), 3);
}

#[test]
fn a_registry_observer_sees_breakers_registered_before_and_after_it() {
    let registry = Registry::new();
    let early = registry.get_or_create("events.early", Config::default());
    let (log, hook) = recorder();
    registry.on_event(hook);
    let late = registry.get_or_create("events.late", Config::default());
    early.force_open();
    let _ = early.try_acquire();
    late.record_fallback(FallbackReason::Failed);
    let seen: Vec<_> = taken(&log)
        .iter()
        .map(|event| (event.name(), event.kind()))
        .collect();
    assert_eq!(
        seen,
        [
            ("events.early", "transition"),
            ("events.early", "rejection"),
            ("events.late", "fallback"),
        ]
    );
}

#[test]
fn observers_run_outside_every_lock() {
    common::returns_within(
        "an observer using its registry",
        Duration::from_secs(30),
        || {
            let registry = Arc::new(Registry::new());
            let handle = Arc::downgrade(&registry);
            let seen = Arc::new(AtomicUsize::new(0));
            let count = Arc::clone(&seen);
            registry.on_event(move |event| {
                let registry = handle.upgrade().unwrap();
                // Every kind of lock a breaker or the registry takes.
                let breaker = registry.get(event.name()).unwrap();
                let _ = breaker.config();
                let _ = breaker.metrics();
                let _ = registry.health();
                let _ = breaker.try_acquire();
                count.fetch_add(1, Ordering::Relaxed);
            });
            let breaker = registry.get_or_create("events.reentrant", Config::default());
            breaker.force_open();
            let _ = breaker.try_acquire();
            registry.configure(
                "events.reentrant",
                Config::builder().failure_threshold(9).build().unwrap(),
            );
            registry
                .load_toml("[breakers.\"events.reentrant\"]\nfailure_threshold = 8\n")
                .unwrap();
            breaker.record_fallback(FallbackReason::Rejected);
            assert!(seen.load(Ordering::Relaxed) >= 5);
        },
    );
}

#[test]
fn an_observer_calling_the_breaker_on_each_rejection_does_not_call_itself_without_end() {
    common::returns_within("a re-entering observer", Duration::from_secs(30), || {
        let breaker = Arc::new(CircuitBreaker::new("events.echo", Config::default()));
        let handle = Arc::downgrade(&breaker);
        let rejections = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&rejections);
        breaker.on_event(move |event| {
            if let Event::Rejection(_) = event {
                count.fetch_add(1, Ordering::Relaxed);
                let _ = handle.upgrade().unwrap().try_acquire();
            }
        });
        breaker.force_open();
        assert!(breaker.try_acquire().is_err());
        assert_eq!(
            rejections.load(Ordering::Relaxed),
            4,
            "the caller's rejection and three the observer caused, each observed"
        );
        assert_eq!(
            breaker.metrics().rejected_calls,
            5,
            "and all of them counted"
        );
    });
}

#[test]
fn a_panicking_observer_is_contained() {
    let clock = ManualClock::new();
    let breaker = CircuitBreaker::new("events.panicking", config(&clock));
    breaker.on_event(|event| panic!("observer bug on {}", event.kind()));
    let (log, hook) = recorder();
    breaker.on_event(hook);

    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let _ = breaker.call(|| Err::<(), _>(()));
        breaker.call(|| Ok::<_, ()>(()))
    }));
    let Ok(Err(CallError::Rejected(rejection))) = outcome else {
        panic!("the observer's panic reached the caller: {outcome:?}")
    };
    assert_eq!(rejection.state(), State::Open);
    assert_eq!(
        kinds(&taken(&log)),
        ["transition", "rejection"],
        "the observer after it still ran"
    );
    assert_eq!(breaker.metrics().rejected_calls, 1);
}
