//! Configuration that changes while the program runs: `configure` before
//! and after a name's first use, `reconfigure` in place, `replace` and
//! `remove`, seen through call sites that cached their breaker.
//!
//! Tests in this binary run in parallel and share `registry()`, so each
//! uses names of its own.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use circuit_runtime::{
    circuit_breaker, registry, CallError, CircuitBreaker, Config, ManualClock, Registry, State,
};

#[path = "common/api.rs"]
mod api;
use api::{registered, ApiError};

fn config(failure_threshold: u32, clock: &ManualClock) -> Config {
    Config::builder()
        .failure_threshold(failure_threshold)
        .recovery_timeout(Duration::from_secs(10))
        .clock(clock.clone())
        .build()
        .unwrap()
}

static CONFIGURED_DOWN: AtomicBool = AtomicBool::new(true);

#[circuit_breaker(name = "live.configured_first", failure_threshold = 5)]
fn configured_first() -> Result<(), ApiError> {
    if CONFIGURED_DOWN.load(Ordering::Relaxed) {
        Err(ApiError::Down)
    } else {
        Ok(())
    }
}

#[test]
fn a_configuration_set_before_the_first_call_is_what_the_breaker_is_built_with() {
    let clock = ManualClock::new();
    registry().configure("live.configured_first", config(1, &clock));
    assert_eq!(configured_first(), Err(ApiError::Down));
    assert_eq!(
        registered("live.configured_first").state(),
        State::Open,
        "the configured threshold of 1, not the attribute's 5"
    );
    assert_eq!(configured_first(), Err(ApiError::Unavailable));
    CONFIGURED_DOWN.store(false, Ordering::Relaxed);
    clock.advance(Duration::from_secs(10));
    assert_eq!(configured_first(), Ok(()), "the configured clock drives it");
    assert_eq!(registered("live.configured_first").state(), State::Closed);
}

#[circuit_breaker(name = "live.retuned", failure_threshold = 5)]
fn retuned(fail: bool) -> Result<(), ApiError> {
    if fail {
        Err(ApiError::Down)
    } else {
        Ok(())
    }
}

#[test]
fn a_cached_call_site_sees_a_reconfiguration_from_its_next_call() {
    let clock = ManualClock::new();
    registry().configure("live.retuned", config(5, &clock));
    for _ in 0..3 {
        assert_eq!(retuned(true), Err(ApiError::Down));
    }
    let before = registered("live.retuned");
    assert_eq!(before.metrics().consecutive_failures, 3);

    // Tighter than the failures already counted: the next failure trips.
    registry().configure("live.retuned", config(2, &clock));
    let after = registered("live.retuned");
    assert!(Arc::ptr_eq(&before, &after), "reconfigured in place");
    assert_eq!(after.config().failure_threshold(), 2);
    assert_eq!(after.state(), State::Closed, "its state stays");
    assert_eq!(after.metrics().failed_calls, 3, "its counters continue");
    assert_eq!(retuned(true), Err(ApiError::Down));
    assert_eq!(after.state(), State::Open);
    assert_eq!(retuned(false), Err(ApiError::Unavailable));
    assert_eq!(after.metrics().failed_calls, 4);
    assert_eq!(after.metrics().rejected_calls, 1);
}

#[test]
fn a_resized_count_window_keeps_its_most_recent_outcomes() {
    let clock = ManualClock::new();
    let windowed = |window_size: u32| {
        Config::builder()
            .failure_threshold(1000)
            .failure_rate_threshold(0.5)
            .window_size(window_size)
            .minimum_calls(window_size)
            .clock(clock.clone())
            .build()
            .unwrap()
    };
    let breaker = CircuitBreaker::new("live.window", windowed(10));
    // Oldest to newest: six failures, then four successes.
    for _ in 0..6 {
        let _ = breaker.call(|| Err::<(), _>("down"));
    }
    for _ in 0..4 {
        let _ = breaker.call(|| Ok::<_, &str>(()));
    }
    assert_eq!(breaker.state(), State::Open, "6 failures in 10");
    breaker.reset();
    for _ in 0..3 {
        let _ = breaker.call(|| Err::<(), _>("down"));
    }
    for _ in 0..5 {
        let _ = breaker.call(|| Ok::<_, &str>(()));
    }
    assert_eq!(breaker.metrics().failure_rate, Some(3.0 / 8.0));

    // The last four are successes: the rate over them is zero.
    breaker.reconfigure(windowed(4));
    assert_eq!(breaker.config().window_size(), Some(4));
    assert_eq!(breaker.metrics().failure_rate, Some(0.0));
    // Growing again keeps what the small window held, and adds from there.
    breaker.reconfigure(windowed(6));
    assert_eq!(breaker.metrics().failure_rate, Some(0.0));
    for _ in 0..2 {
        let _ = breaker.call(|| Err::<(), _>("down"));
    }
    assert_eq!(breaker.state(), State::Closed, "2 failures in 6");
    let _ = breaker.call(|| Err::<(), _>("down"));
    assert_eq!(breaker.state(), State::Open, "3 failures in the last 6");
}

#[test]
fn a_resized_time_window_keeps_the_outcomes_within_its_new_span() {
    let clock = ManualClock::new();
    let windowed = |span: Duration| {
        Config::builder()
            .failure_threshold(1000)
            .failure_rate_threshold(0.9)
            .window_duration(span)
            .minimum_calls(4)
            .clock(clock.clone())
            .build()
            .unwrap()
    };
    let breaker = CircuitBreaker::new("live.time_window", windowed(Duration::from_secs(100)));
    let _ = breaker.call(|| Err::<(), _>("old"));
    clock.advance(Duration::from_secs(50));
    for _ in 0..3 {
        let _ = breaker.call(|| Ok::<_, &str>(()));
    }
    assert_eq!(breaker.metrics().failure_rate, Some(0.25));

    // Twenty seconds back holds only the three successes.
    breaker.reconfigure(windowed(Duration::from_secs(20)));
    assert_eq!(breaker.metrics().failure_rate, Some(0.0));
}

#[test]
fn turning_a_rate_rule_on_starts_a_window_and_turning_it_off_stops_reading_it() {
    let breaker = CircuitBreaker::new("live.rule_on_off", Config::default());
    assert_eq!(breaker.metrics().failure_rate, None);
    let with_rule = Config::builder()
        .failure_rate_threshold(0.5)
        .window_size(4)
        .build()
        .unwrap();
    breaker.reconfigure(with_rule);
    let _ = breaker.call(|| Ok::<_, &str>(()));
    let _ = breaker.call(|| Err::<(), _>("down"));
    assert_eq!(breaker.metrics().failure_rate, Some(0.5));
    breaker.reconfigure(Config::default());
    assert_eq!(breaker.metrics().failure_rate, None);
    // One consecutive failure already: three more make four.
    for _ in 0..3 {
        let _ = breaker.call(|| Err::<(), _>("down"));
    }
    assert_eq!(breaker.state(), State::Closed, "4 consecutive, threshold 5");
}

#[test]
fn reconfiguring_keeps_the_backoff_step_and_the_current_open_period() {
    let clock = ManualClock::new();
    let backoff = |recovery: u64| {
        Config::builder()
            .failure_threshold(1)
            .recovery_timeout(Duration::from_secs(recovery))
            .recovery_backoff(2.0)
            .max_recovery_timeout(Duration::from_secs(1000))
            .clock(clock.clone())
            .build()
            .unwrap()
    };
    let breaker = CircuitBreaker::new("live.backoff", backoff(10));
    breaker.record_failure();
    clock.advance(Duration::from_secs(10));
    let permit = breaker.try_acquire().expect("a trial");
    permit.record_failure(); // reopens for 20 s
    breaker.reconfigure(backoff(1));
    let retry_after = breaker.try_acquire().unwrap_err().retry_after();
    assert_eq!(
        retry_after,
        Some(Duration::from_secs(20)),
        "the open period keeps its end"
    );
    clock.advance(Duration::from_secs(20));
    let permit = breaker.try_acquire().expect("a trial");
    permit.record_failure(); // the third open period: 1 s * 2^2
    let retry_after = breaker.try_acquire().unwrap_err().retry_after();
    assert_eq!(retry_after, Some(Duration::from_secs(4)));
}

static RESTORED_DOWN: AtomicBool = AtomicBool::new(false);

#[circuit_breaker(name = "live.fresh", failure_threshold = 3)]
fn fresh_call() -> Result<(), ApiError> {
    if RESTORED_DOWN.load(Ordering::Relaxed) {
        Err(ApiError::Down)
    } else {
        Ok(())
    }
}

/// What another test might have done first in the same process: used the
/// function, with the attribute's configuration, and left its breaker open.
fn another_test_ran_first() {
    RESTORED_DOWN.store(true, Ordering::Relaxed);
    for _ in 0..3 {
        let _ = fresh_call();
    }
    assert_eq!(registered("live.fresh").state(), State::Open);
    RESTORED_DOWN.store(false, Ordering::Relaxed);
}

#[test]
fn configuring_a_test_clock_gives_a_fresh_breaker_whatever_ran_before() {
    another_test_ran_first();
    let stale = registered("live.fresh");

    let clock = ManualClock::new();
    registry().configure("live.fresh", config(1, &clock));
    let fresh = registered("live.fresh");
    assert!(
        !Arc::ptr_eq(&stale, &fresh),
        "another clock: a fresh breaker"
    );
    assert_eq!(fresh.state(), State::Closed);
    assert_eq!(
        fresh_call(),
        Ok(()),
        "the cached call site uses the fresh one"
    );
    assert_eq!(fresh.metrics().successful_calls, 1);
    assert_eq!(
        stale.metrics().successful_calls,
        0,
        "the stale one sees nothing"
    );

    RESTORED_DOWN.store(true, Ordering::Relaxed);
    assert_eq!(fresh_call(), Err(ApiError::Down));
    assert_eq!(fresh.state(), State::Open, "its own threshold of 1");
    RESTORED_DOWN.store(false, Ordering::Relaxed);
    clock.advance(Duration::from_secs(10));
    assert_eq!(fresh_call(), Ok(()), "its own clock");
    assert_eq!(fresh.state(), State::Closed);
}

#[circuit_breaker(name = "live.removed", failure_threshold = 1)]
fn removed_call(fail: bool) -> Result<(), ApiError> {
    if fail {
        Err(ApiError::Down)
    } else {
        Ok(())
    }
}

#[test]
fn a_removed_names_call_sites_pick_up_a_new_breaker() {
    assert_eq!(removed_call(true), Err(ApiError::Down));
    assert_eq!(removed_call(false), Err(ApiError::Unavailable));
    let removed = registry().remove("live.removed").expect("registered");
    assert!(registry().get("live.removed").is_none());
    assert!(!registry().names().contains(&"live.removed".to_owned()));

    assert_eq!(removed_call(false), Ok(()), "a new, closed breaker");
    let new = registered("live.removed");
    assert!(!Arc::ptr_eq(&removed, &new));
    assert_eq!(
        new.config().failure_threshold(),
        1,
        "the attribute's options"
    );
    assert_eq!(
        removed.state(),
        State::Open,
        "the removed one still works for its holder"
    );
    assert_eq!(removed.metrics().successful_calls, 0);
}

#[test]
fn a_replaced_breaker_keeps_working_for_whoever_holds_it() {
    let registry = Registry::new();
    let old = registry.get_or_create("db", Config::default());
    let new = registry.replace(
        "db",
        Config::builder().failure_threshold(1).build().unwrap(),
    );
    assert!(!Arc::ptr_eq(&old, &new));
    assert_eq!(old.call(|| Ok::<_, ()>(7)), Ok(7));
    new.record_failure();
    assert_eq!(new.state(), State::Open);
    assert_eq!(old.state(), State::Closed);
    assert!(matches!(
        new.call(|| Ok::<_, ()>(())),
        Err(CallError::Rejected(_))
    ));
}

#[test]
fn a_configured_name_keeps_its_configuration_over_later_code() {
    let registry = Registry::new();
    registry.configure(
        "db",
        Config::builder().failure_threshold(2).build().unwrap(),
    );
    let breaker = registry.get_or_create("db", Config::default());
    assert_eq!(breaker.config().failure_threshold(), 2);
    assert!(
        registry.conflicts().is_empty(),
        "code's first request is no conflict"
    );
    let other = Config::builder().failure_threshold(7).build().unwrap();
    registry.get_or_create("db", other.clone());
    let conflicts = registry.conflicts();
    assert_eq!(conflicts.len(), 1, "code asked twice, differently");
    assert_eq!(conflicts[0].differing, ["failure_threshold"]);
    assert_eq!(breaker.config().failure_threshold(), 2);
}

#[test]
fn conflicts_compare_options_not_clocks() {
    let registry = Registry::new();
    let tested = Config::builder().clock(ManualClock::new()).build().unwrap();
    registry.get_or_create("db", tested);
    registry.get_or_create("db", Config::default());
    assert!(registry.conflicts().is_empty(), "only the clock differs");

    let strict = Config::builder()
        .failure_threshold(1)
        .jitter(0.2)
        .clock(ManualClock::new())
        .build()
        .unwrap();
    registry.get_or_create("db", strict);
    let conflicts = registry.conflicts();
    assert_eq!(conflicts.len(), 1);
    assert_eq!(conflicts[0].differing, ["failure_threshold", "jitter"]);
}

#[test]
fn reconfiguration_under_concurrent_calls_loses_no_call() {
    let breaker = Arc::new(CircuitBreaker::new(
        "live.concurrent",
        Config::builder()
            .failure_threshold(1_000_000)
            .build()
            .unwrap(),
    ));
    let windowed = |size: u32| {
        Config::builder()
            .failure_threshold(1_000_000)
            .failure_rate_threshold(1.0)
            .window_size(size)
            .minimum_calls(size)
            .build()
            .unwrap()
    };
    std::thread::scope(|scope| {
        for thread in 0..3 {
            let breaker = Arc::clone(&breaker);
            scope.spawn(move || {
                for call in 0..20_000 {
                    let fail = (call + thread) % 3 == 0;
                    let _ = breaker.call(|| if fail { Err("down") } else { Ok(()) });
                }
            });
        }
        let breaker = Arc::clone(&breaker);
        scope.spawn(move || {
            for round in 0..500_u32 {
                breaker.reconfigure(match round % 3 {
                    0 => windowed(5 + round % 7),
                    1 => Config::builder()
                        .failure_threshold(1_000_000)
                        .build()
                        .unwrap(),
                    _ => windowed(50),
                });
            }
        });
    });
    let metrics = breaker.metrics();
    assert_eq!(metrics.total_calls + metrics.rejected_calls, 60_000);
    assert_eq!(breaker.state(), State::Closed, "no rule could trip it");
}

struct Client;

impl Client {
    #[circuit_breaker(failure_threshold = 1)]
    fn fetch(&self, fail: bool) -> Result<(), ApiError> {
        if fail {
            Err(ApiError::Down)
        } else {
            Ok(())
        }
    }
}

#[test]
fn a_method_named_after_its_type_picks_up_a_replaced_breaker() {
    let name = "live_config::Client::fetch";
    assert_eq!(Client.fetch(true), Err(ApiError::Down));
    assert_eq!(Client.fetch(false), Err(ApiError::Unavailable));
    let clock = ManualClock::new();
    let fresh = registry().replace(name, config(2, &clock));
    assert_eq!(
        Client.fetch(true),
        Err(ApiError::Down),
        "the fresh breaker runs it"
    );
    assert_eq!(fresh.metrics().failed_calls, 1);
    assert_eq!(fresh.state(), State::Closed, "its own threshold of 2");
    assert!(registry().remove(name).is_some());
    assert_eq!(
        Client.fetch(false),
        Ok(()),
        "a new breaker after the removal"
    );
    assert_eq!(registered(name).config().failure_threshold(), 1);
}

#[circuit_breaker(name = "live.raced")]
fn raced() -> Result<(), ApiError> {
    Ok(())
}

#[test]
fn calls_racing_replacements_each_land_on_one_breaker_and_then_on_the_last() {
    const CALLS: u64 = 5_000;
    assert_eq!(raced(), Ok(()));
    let mut breakers = vec![registered("live.raced")];
    std::thread::scope(|scope| {
        for _ in 0..3 {
            scope.spawn(|| {
                for _ in 0..CALLS {
                    assert_eq!(raced(), Ok(()));
                }
            });
        }
        for _ in 0..200 {
            breakers.push(registry().replace("live.raced", Config::default()));
        }
    });
    assert_eq!(raced(), Ok(()));
    let last = breakers.last().unwrap();
    assert!(Arc::ptr_eq(last, &registered("live.raced")));
    assert!(
        last.metrics().total_calls >= 1,
        "the call after the race is on the last"
    );
    let total: u64 = breakers.iter().map(|b| b.metrics().total_calls).sum();
    assert_eq!(
        total,
        3 * CALLS + 2,
        "every call counted once, on one of them"
    );
}

#[test]
fn a_window_put_back_in_use_in_the_same_period_holds_only_what_it_was_given() {
    let windowed = |window_size: u32| {
        Config::builder()
            .failure_threshold(1000)
            .failure_rate_threshold(0.75)
            .window_size(window_size)
            .minimum_calls(4)
            .build()
            .unwrap()
    };
    let breaker = CircuitBreaker::new("live.window_back", windowed(4));
    for fail in [true, true, false, false] {
        let _ = breaker.call(|| if fail { Err("down") } else { Ok(()) });
    }
    breaker.reconfigure(windowed(8));
    breaker.reconfigure(windowed(4));
    assert_eq!(
        breaker.metrics().failure_rate,
        Some(0.5),
        "F F S S carried over and back"
    );
    for _ in 0..2 {
        let _ = breaker.call(|| Err::<(), _>("down"));
    }
    assert_eq!(breaker.state(), State::Closed, "S S F F: 0.5");
    let _ = breaker.call(|| Err::<(), _>("down"));
    assert_eq!(breaker.state(), State::Open, "S F F F: 0.75");
}

#[circuit_breaker(name = "live.closed_path_work")]
fn takes(clock: &ManualClock, duration: Duration, fail: bool) -> Result<(), ApiError> {
    clock.advance(duration);
    if fail {
        Err(ApiError::Down)
    } else {
        Ok(())
    }
}

/// Each option that gives a closed call more to do than a count (timing,
/// a window, a concurrency limit) is taken up by a cached call site from its
/// next call, and dropped again.
#[test]
fn a_cached_call_site_takes_up_and_drops_timing_a_window_and_a_limit() {
    const NAME: &str = "live.closed_path_work";
    let clock = ManualClock::new();
    let second = Duration::from_secs(1);
    let plain = || {
        Config::builder()
            .failure_threshold(100)
            .clock(clock.clone())
    };
    registry().configure(NAME, plain().build().unwrap());
    assert_eq!(takes(&clock, second, false), Ok(()));
    let breaker = registered(NAME);
    assert_eq!(breaker.metrics().slow_calls, 0, "nothing times calls yet");

    let timed = plain().slow_call_duration(Duration::from_millis(500));
    registry().configure(NAME, timed.build().unwrap());
    assert_eq!(takes(&clock, second, false), Ok(()));
    assert_eq!(breaker.metrics().slow_calls, 1, "timed from the next call");

    let windowed = plain()
        .failure_rate_threshold(0.5)
        .window_size(10)
        .minimum_calls(10);
    registry().configure(NAME, windowed.build().unwrap());
    assert_eq!(takes(&clock, second, true), Err(ApiError::Down));
    assert_eq!(takes(&clock, second, false), Ok(()));
    assert_eq!(
        breaker.metrics().failure_rate,
        Some(0.5),
        "both in the window"
    );
    assert_eq!(breaker.metrics().slow_calls, 1, "no longer timed");

    registry().configure(NAME, plain().max_concurrent_calls(1).build().unwrap());
    let running = breaker.try_acquire().expect("the one slot");
    assert_eq!(takes(&clock, second, false), Err(ApiError::Unavailable));
    assert_eq!(breaker.metrics().bulkhead_rejected, 1);
    assert_eq!(breaker.metrics().failure_rate, None, "no window any more");

    registry().configure(NAME, plain().build().unwrap());
    assert_eq!(takes(&clock, second, false), Ok(()), "the limit is gone");
    running.record_success();
    let metrics = breaker.metrics();
    assert_eq!((metrics.slow_calls, metrics.bulkhead_rejected), (1, 1));
    assert_eq!(metrics.successful_calls, 5);
    assert!(
        Arc::ptr_eq(&breaker, &registered(NAME)),
        "one breaker throughout"
    );
}

/// Calls admitted before a rate rule existed are not in the window it
/// starts, failures no more than successes: a window that took only their
/// failures would hold a failure rate they never had.
#[test]
fn calls_running_when_a_window_starts_stay_out_of_it_whatever_their_outcome() {
    let breaker = CircuitBreaker::new("live.window_after_admission", Config::default());
    let running: Vec<_> = (0..10)
        .map(|_| breaker.try_acquire().expect("closed"))
        .collect();
    let with_rule = Config::builder()
        .failure_rate_threshold(0.5)
        .window_size(10)
        .minimum_calls(10)
        .build()
        .unwrap();
    breaker.reconfigure(with_rule);
    for (index, permit) in running.into_iter().enumerate() {
        if index < 3 {
            permit.record_failure();
        } else {
            permit.record_success();
        }
    }
    assert_eq!(
        breaker.metrics().failure_rate,
        None,
        "the window holds none of them"
    );
    assert_eq!(
        breaker.state(),
        State::Closed,
        "three failures of ten trip nothing"
    );
    assert_eq!(breaker.metrics().failed_calls, 3, "they still count");
    let _ = breaker.call(|| Err::<(), _>("down"));
    let _ = breaker.call(|| Ok::<_, &str>(()));
    assert_eq!(
        breaker.metrics().failure_rate,
        Some(0.5),
        "calls admitted since are"
    );
}
