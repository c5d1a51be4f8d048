//! Retries: which errors are retried, the delays between attempts in every
//! jitter mode, the time limit, budgets, `retry_after` hints, and retries
//! composed with a breaker. Every delay runs on a manual clock or tokio's
//! paused clock: no test waits for real.

use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use circuit_runtime::retry::{
    classify_error, retry, retry_async, retry_if, AttemptTimeout, Classify, ErrorCategory, Jitter,
    RetryBudget, RetryConfig, Severity, TokioSleeper,
};
use circuit_runtime::{
    CallError, CircuitBreaker, Config, ConfigError, ManualClock, State, TimeoutError,
};

fn secs(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

fn config(jitter: Jitter, clock: &ManualClock) -> RetryConfig {
    RetryConfig::builder()
        .max_retries(6)
        .base_delay(secs(1))
        .max_delay(secs(10))
        .jitter(jitter)
        .clock(clock.clone())
        .build()
        .unwrap()
}

/// The exponential delays of `config(_)`: 1, 2, 4, 8, then capped at 10.
const EXPONENTIAL: [u64; 6] = [1, 2, 4, 8, 10, 10];

fn reset() -> io::Error {
    io::Error::from(io::ErrorKind::ConnectionReset)
}

/// 1 s between attempts, each cut off after 2 s, on `clock`.
fn timed_config(clock: &ManualClock) -> RetryConfig<AttemptTimeout> {
    RetryConfig::builder()
        .base_delay(secs(1))
        .jitter(Jitter::None)
        .attempt_timeout(secs(2))
        .clock(clock.clone())
        .build()
        .unwrap()
}

/// A sleep that moves `clock` when polled, not when asked for: an
/// attempt that completes at once never polls its limit.
#[allow(clippy::unused_async)] // async so that it moves the clock when polled
async fn advance(clock: ManualClock, delay: Duration) {
    clock.advance(delay);
}

/// The next attempt counted by `attempts`: the first hangs, every later
/// one succeeds with its number.
async fn first_hangs(attempts: &AtomicU32) -> io::Result<u32> {
    let attempt = attempts.fetch_add(1, Ordering::Relaxed);
    if attempt == 0 {
        std::future::pending::<()>().await;
    }
    Ok(attempt)
}

#[test]
fn without_jitter_delays_grow_exponentially_to_the_cap() {
    let delays: Vec<_> = config(Jitter::None, &ManualClock::new()).delays().collect();
    assert_eq!(delays, EXPONENTIAL.map(secs));
}

#[test]
fn every_jitter_mode_stays_within_its_bounds_and_below_max_delay() {
    let clock = ManualClock::new();
    for _ in 0..200 {
        let full: Vec<_> = config(Jitter::Full, &clock).delays().collect();
        let equal: Vec<_> = config(Jitter::Equal, &clock).delays().collect();
        let decorrelated: Vec<_> = config(Jitter::Decorrelated, &clock).delays().collect();
        for (index, exponential) in EXPONENTIAL.map(secs).into_iter().enumerate() {
            assert!(full[index] <= exponential, "full: {full:?}");
            assert!(
                (exponential / 2..=exponential).contains(&equal[index]),
                "equal: {equal:?}"
            );
        }
        let mut previous = secs(1);
        for delay in &decorrelated {
            assert!(
                *delay >= secs(1) && *delay <= secs(10),
                "decorrelated: {decorrelated:?}"
            );
            assert!(
                *delay <= (previous * 3).max(secs(1)),
                "decorrelated: {decorrelated:?}"
            );
            previous = *delay;
        }
    }
    let firsts: Vec<_> = (0..50)
        .map(|_| config(Jitter::Full, &clock).delays().next().unwrap())
        .collect();
    assert!(
        firsts
            .iter()
            .any(|delay| *delay < Duration::from_millis(300))
            && firsts
                .iter()
                .any(|delay| *delay > Duration::from_millis(700)),
        "full jitter spreads over the whole delay: {firsts:?}"
    );
}

#[test]
fn a_huge_exponential_base_still_caps_every_jittered_delay() {
    let clock = ManualClock::new();
    for jitter in [
        Jitter::None,
        Jitter::Full,
        Jitter::Equal,
        Jitter::Decorrelated,
    ] {
        let config = RetryConfig::builder()
            .max_retries(50)
            .base_delay(secs(1))
            .max_delay(secs(30))
            .exponential_base(1e200)
            .jitter(jitter)
            .clock(clock.clone())
            .build()
            .unwrap();
        assert!(config.delays().all(|delay| delay <= secs(30)), "{jitter:?}");
    }
}

#[test]
fn retryable_errors_are_retried_until_success_on_the_manual_clock() {
    let clock = ManualClock::new();
    let start = clock.now();
    let mut attempts = 0;
    let result = retry(&config(Jitter::None, &clock), || {
        attempts += 1;
        if attempts <= 3 {
            Err(reset())
        } else {
            Ok(attempts)
        }
    });
    assert_eq!(result.unwrap(), 4);
    assert_eq!(clock.now() - start, secs(1 + 2 + 4));
}

#[test]
fn retries_stop_after_max_retries_with_the_last_error() {
    let clock = ManualClock::new();
    let mut attempts = 0;
    let result: Result<(), _> = retry(&config(Jitter::None, &clock), || {
        attempts += 1;
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("attempt {attempts}"),
        ))
    });
    assert_eq!(attempts, 7, "the first attempt and six retries");
    assert_eq!(result.unwrap_err().to_string(), "attempt 7");
}

#[test]
fn permanent_errors_are_never_retried() {
    let clock = ManualClock::new();
    let start = clock.now();
    let mut attempts = 0;
    let result: Result<(), _> = retry(&config(Jitter::None, &clock), || {
        attempts += 1;
        Err(io::Error::from(io::ErrorKind::NotFound))
    });
    assert!(result.is_err());
    assert_eq!(attempts, 1);
    assert_eq!(clock.now(), start, "and no time waited");
}

#[test]
fn a_breaker_rejection_ends_the_retries_at_once() {
    let clock = ManualClock::new();
    let breaker = CircuitBreaker::new(
        "retry.breaker",
        Config::builder()
            .failure_threshold(2)
            .clock(clock.clone())
            .build()
            .unwrap(),
    );
    let mut attempts = 0;
    let result: Result<(), CallError<io::Error>> = retry(&config(Jitter::None, &clock), || {
        attempts += 1;
        breaker.call(|| Err(reset()))
    });
    assert!(matches!(result, Err(CallError::Rejected(_))), "{result:?}");
    assert_eq!(
        attempts, 3,
        "two failures opened it; the third attempt was rejected"
    );
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(breaker.metrics().rejected_calls, 1);
}

#[test]
fn max_elapsed_counts_the_first_attempts_time_too() {
    let clock = ManualClock::new();
    let config = RetryConfig::builder()
        .base_delay(secs(2))
        .jitter(Jitter::None)
        .max_elapsed(secs(6))
        .clock(clock.clone())
        .build()
        .unwrap();
    let mut attempts = 0;
    let result: Result<(), _> = retry(&config, || {
        attempts += 1;
        clock.advance(secs(5));
        Err(reset())
    });
    assert!(result.is_err());
    assert_eq!(attempts, 1, "5 s spent, and a 2 s delay would end past 6 s");
}

#[test]
fn a_zero_base_delay_stays_zero_however_many_retries() {
    let config = RetryConfig::builder()
        .max_retries(1000)
        .base_delay(Duration::ZERO)
        .exponential_base(10.0)
        .jitter(Jitter::None)
        .build()
        .unwrap();
    assert!(config.delays().all(|delay| delay.is_zero()));
}

#[test]
fn max_elapsed_counts_the_attempts_and_the_delays() {
    let clock = ManualClock::new();
    let config = RetryConfig::builder()
        .max_retries(10)
        .base_delay(secs(1))
        .jitter(Jitter::None)
        .max_elapsed(secs(10))
        .clock(clock.clone())
        .build()
        .unwrap();
    let start = clock.now();
    let mut attempts = 0;
    let result: Result<(), _> = retry(&config, || {
        attempts += 1;
        clock.advance(secs(2)); // each attempt takes 2 s
        Err(reset())
    });
    assert!(result.is_err());
    // 2 (attempt) + 1 (delay) + 2 + 2 (delay) + 2 = 9 s; the next delay
    // (4 s) would end past 10 s.
    assert_eq!(attempts, 3);
    assert_eq!(clock.now() - start, secs(9));
}

/// A rate limit that says when to come back.
#[derive(Debug)]
struct Throttled(Duration);

impl Classify for Throttled {
    fn category(&self) -> ErrorCategory {
        ErrorCategory::RateLimit
    }

    fn retry_after(&self) -> Option<Duration> {
        Some(self.0)
    }
}

#[test]
fn a_retry_after_hint_is_honoured_up_to_max_delay() {
    let clock = ManualClock::new();
    for (hint, waited) in [(secs(5), secs(5)), (secs(100), secs(10))] {
        let start = clock.now();
        let mut attempts = 0;
        let result = retry(&config(Jitter::Full, &clock), || {
            attempts += 1;
            if attempts == 1 {
                Err(Throttled(hint))
            } else {
                Ok(())
            }
        });
        assert!(result.is_ok());
        assert_eq!(clock.now() - start, waited, "hint {hint:?}");
    }
}

#[test]
fn a_spent_budget_ends_retries_with_the_last_error() {
    let clock = ManualClock::new();
    let budget = Arc::new(
        RetryBudget::builder()
            .retry_ratio(0.1)
            .min_retries_per_second(0)
            .clock(clock.clone())
            .build()
            .unwrap(),
    );
    let config = RetryConfig::builder()
        .max_retries(3)
        .base_delay(Duration::ZERO)
        .jitter(Jitter::None)
        .budget(Arc::clone(&budget))
        .build()
        .unwrap();
    // 100 calls whose every attempt fails: 10% of 100 first attempts is 10
    // retries in all, not 300.
    let attempts = AtomicU32::new(0);
    for _ in 0..100 {
        let _: Result<(), _> = retry(&config, || {
            attempts.fetch_add(1, Ordering::Relaxed);
            Err(reset())
        });
    }
    let retries = attempts.load(Ordering::Relaxed) - 100;
    assert!(retries <= 10, "{retries} retries");
    assert!(
        retries >= 9,
        "{retries} retries: the budget refilled as calls came in"
    );

    // Ten seconds later the window is empty again.
    clock.advance(secs(10));
    assert!(
        !budget.try_retry(),
        "no first attempts in the window, no floor"
    );
    budget.record_first_attempt();
    budget.record_first_attempt();
    assert!(!budget.try_retry(), "0.2 of a retry");
}

#[test]
fn errors_without_a_classification_are_retried_by_a_predicate() {
    let clock = ManualClock::new();
    let mut attempts = 0;
    let result = retry_if(
        &config(Jitter::None, &clock),
        |status: &u16| *status >= 500,
        || {
            attempts += 1;
            Err::<(), u16>(if attempts < 3 { 503 } else { 404 })
        },
    );
    assert_eq!(result, Err(404), "the 404 was not retried");
    assert_eq!(attempts, 3);
}

#[test]
fn io_errors_and_rejections_are_classified() {
    let category = |kind| classify_error(&io::Error::from(kind));
    assert_eq!(
        category(io::ErrorKind::ConnectionRefused),
        (ErrorCategory::Network, Severity::Medium)
    );
    assert_eq!(
        category(io::ErrorKind::TimedOut),
        (ErrorCategory::Transient, Severity::Low)
    );
    assert_eq!(
        category(io::ErrorKind::OutOfMemory),
        (ErrorCategory::Resource, Severity::High)
    );
    assert_eq!(
        category(io::ErrorKind::PermissionDenied).0,
        ErrorCategory::Permanent
    );

    let breaker = CircuitBreaker::new("retry.classified", Config::default());
    breaker.force_open();
    let rejection = breaker.try_acquire().unwrap_err();
    assert_eq!(
        classify_error(&rejection),
        (ErrorCategory::Permanent, Severity::High)
    );
    let failed: CallError<io::Error> = CallError::Failed(reset());
    assert_eq!(classify_error(&failed).0, ErrorCategory::Network);
}

#[test]
fn a_bad_option_is_an_error_that_names_it() {
    let err = RetryConfig::builder()
        .max_retries(5000)
        .build()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "`max_retries` must be between 0 and 1000, got 5000"
    );
    let err = RetryConfig::builder()
        .exponential_base(0.5)
        .build()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "`exponential_base` must be at least 1.0, got 0.5"
    );
    let err = RetryConfig::builder()
        .max_elapsed(Duration::ZERO)
        .build()
        .unwrap_err();
    assert!(matches!(
        err,
        ConfigError::OutOfRange {
            option: "max_elapsed",
            ..
        }
    ));
    assert_eq!(
        "sometimes".parse::<Jitter>().unwrap_err(),
        "`jitter` is one of \"none\", \"full\", \"equal\", \"decorrelated\" (or `true`, `false`), not \"sometimes\""
    );
}

#[allow(clippy::unused_async)] // an attempt is a future, as a real call's is
async fn flaky(attempts: &AtomicU32, failures: u32) -> Result<u32, io::Error> {
    let attempt = attempts.fetch_add(1, Ordering::Relaxed) + 1;
    if attempt <= failures {
        Err(reset())
    } else {
        Ok(attempt)
    }
}

#[test]
fn async_retries_run_on_the_futures_executor_with_a_manual_clock_sleeper() {
    let clock = ManualClock::new();
    let start = clock.now();
    let attempts = AtomicU32::new(0);
    let sleeper = |delay| {
        clock.advance(delay);
        std::future::ready(())
    };
    let config = config(Jitter::None, &clock);
    let result = futures::executor::block_on(retry_async(&config, sleeper, || flaky(&attempts, 2)));
    assert_eq!(result.unwrap(), 3);
    assert_eq!(clock.now() - start, secs(3));
}

#[test]
fn an_attempt_past_attempt_timeout_is_cut_off_and_the_next_one_runs() {
    let clock = ManualClock::new();
    let start = clock.now();
    let sleeper = |delay| advance(clock.clone(), delay);
    let config = timed_config(&clock);
    assert_eq!(config.attempt_timeout(), secs(2));
    let attempts = AtomicU32::new(0);
    let result =
        futures::executor::block_on(retry_async(&config, sleeper, || first_hangs(&attempts)));
    assert_eq!(result.unwrap(), 1, "the hanging first attempt was cut off");
    assert_eq!(
        clock.now() - start,
        secs(2 + 1),
        "its limit, then the delay"
    );
}

#[test]
fn an_attempt_that_completes_at_once_never_starts_its_timer() {
    // A sleeper that moves the clock when asked, not when polled: had each
    // attempt asked for its limit's timer up front, three instant attempts
    // would have moved the clock 6 s and run past `max_elapsed`.
    let clock = ManualClock::new();
    let start = clock.now();
    let sleeper = |delay| {
        clock.advance(delay);
        std::future::ready(())
    };
    let config = RetryConfig::builder()
        .max_retries(3)
        .base_delay(Duration::ZERO)
        .attempt_timeout(secs(2))
        .max_elapsed(secs(3))
        .clock(clock.clone())
        .build()
        .unwrap();
    let attempts = AtomicU32::new(0);
    let result = futures::executor::block_on(retry_async(&config, sleeper, || {
        attempts.fetch_add(1, Ordering::Relaxed);
        std::future::ready(Err::<(), _>(reset()))
    }));
    assert_eq!(result.unwrap_err().kind(), io::ErrorKind::ConnectionReset);
    assert_eq!(attempts.load(Ordering::Relaxed), 4, "every retry ran");
    assert_eq!(clock.now(), start, "no timer was started");
}

#[test]
fn attempts_that_all_time_out_end_in_the_timeout_error() {
    let sleeper = |_| std::future::ready(());
    let config = RetryConfig::builder()
        .max_retries(2)
        .base_delay(Duration::ZERO)
        .attempt_timeout(Duration::from_millis(250))
        .build()
        .unwrap();
    let attempts = AtomicU32::new(0);
    let error = futures::executor::block_on(retry_async(&config, sleeper, || {
        attempts.fetch_add(1, Ordering::Relaxed);
        std::future::pending::<Result<(), std::io::Error>>()
    }))
    .unwrap_err();
    assert_eq!(attempts.load(Ordering::Relaxed), 3, "a timeout is retried");
    assert_eq!(error.kind(), std::io::ErrorKind::TimedOut);
    let timeout = error
        .into_inner()
        .unwrap()
        .downcast::<TimeoutError>()
        .unwrap();
    assert_eq!(timeout.limit(), Duration::from_millis(250));
    assert_eq!(
        timeout.to_string(),
        "the attempt did not finish within 250ms"
    );
}

#[test]
fn a_zero_attempt_timeout_is_refused() {
    let error = RetryConfig::builder()
        .attempt_timeout(Duration::ZERO)
        .build()
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        RetryConfig::builder()
            .max_elapsed(Duration::ZERO)
            .build()
            .unwrap_err()
            .to_string()
            .replace("max_elapsed", "attempt_timeout")
    );
    assert!(error.to_string().contains("`attempt_timeout`"), "{error}");
}

#[tokio::test(start_paused = true)]
async fn async_retries_run_on_tokio_with_its_sleeper() {
    let start = tokio::time::Instant::now();
    let attempts = AtomicU32::new(0);
    let config = RetryConfig::builder()
        .base_delay(secs(1))
        .jitter(Jitter::None)
        .build()
        .unwrap();
    let result = retry_async(&config, TokioSleeper, || flaky(&attempts, 3)).await;
    assert_eq!(result.unwrap(), 4);
    assert_eq!(
        start.elapsed(),
        secs(1 + 2 + 4),
        "tokio's paused clock moved, nobody waited"
    );
}

#[test]
fn full_jitter_is_the_default_of_the_configuration_and_its_builder() {
    assert_eq!(RetryConfig::default().jitter(), Jitter::Full);
    assert_eq!(
        RetryConfig::builder().build().unwrap().jitter(),
        Jitter::Full
    );
}

#[test]
fn by_default_retries_wait_at_most_the_unjittered_sum_and_not_always_all_of_it() {
    let clock = ManualClock::new();
    // No `jitter` set: the default's.
    let config = RetryConfig::builder()
        .max_retries(5)
        .base_delay(secs(1))
        .max_delay(secs(10))
        .clock(clock.clone())
        .build()
        .unwrap();
    let unjittered = secs(1 + 2 + 4 + 8 + 10);
    let mut waits = Vec::new();
    for _ in 0..40 {
        let start = clock.now();
        let mut attempts = 0;
        let result: Result<(), _> = retry(&config, || {
            attempts += 1;
            Err(reset())
        });
        assert!(result.is_err());
        assert_eq!(attempts, 6);
        let waited = clock.now() - start;
        assert!(waited <= unjittered, "waited {waited:?}");
        waits.push(waited);
    }
    assert!(
        waits.iter().any(|waited| *waited < unjittered / 2),
        "full jitter, not none or equal: {waits:?}"
    );
    let firsts: Vec<_> = (0..50).map(|_| config.delays().next().unwrap()).collect();
    assert!(firsts.iter().all(|delay| *delay <= secs(1)), "{firsts:?}");
    assert!(
        firsts
            .iter()
            .any(|delay| *delay < Duration::from_millis(500)),
        "below half the delay, as only full jitter goes: {firsts:?}"
    );
}

fn breaker_on(name: &str, clock: &ManualClock, failure_threshold: u32) -> CircuitBreaker {
    CircuitBreaker::new(
        name,
        Config::builder()
            .failure_threshold(failure_threshold)
            .clock(clock.clone())
            .build()
            .unwrap(),
    )
}

#[test]
fn call_retrying_counts_every_attempt_and_retry_on_the_breaker() {
    let clock = ManualClock::new();
    let breaker = breaker_on("retry.call_retrying", &clock, 100);
    let config = config(Jitter::None, &clock);
    let start = clock.now();
    let mut attempts = 0;
    let result = breaker.call_retrying(&config, || {
        attempts += 1;
        if attempts <= 2 {
            Err(reset())
        } else {
            Ok(attempts)
        }
    });
    assert_eq!(result.unwrap(), 3);
    assert_eq!(clock.now() - start, secs(1 + 2));

    let mut attempts = 0;
    let result: Result<(), _> = breaker.call_retrying(&config, || {
        attempts += 1;
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("attempt {attempts}"),
        ))
    });
    match result {
        Err(CallError::Failed(error)) => assert_eq!(error.to_string(), "attempt 7"),
        other => panic!("expected the last attempt's error, got {other:?}"),
    }

    assert_eq!(
        breaker
            .call_retrying(&config, || Ok::<_, io::Error>(1))
            .unwrap(),
        1
    );

    let metrics = breaker.metrics();
    assert_eq!(
        (
            metrics.successful_calls,
            metrics.failed_calls,
            metrics.retry_attempts
        ),
        (2, 2 + 7, 2 + 6)
    );
    let calls = metrics.retry_calls;
    assert_eq!(
        (
            calls.successful_without_retry,
            calls.successful_with_retry,
            calls.failed_without_retry,
            calls.failed_with_retry,
            calls.budget_exhausted
        ),
        (1, 1, 0, 1, 0)
    );
}

#[test]
fn call_retrying_ends_at_a_rejection_with_the_rejection() {
    let clock = ManualClock::new();
    let breaker = breaker_on("retry.call_retrying_rejected", &clock, 2);
    let start = clock.now();
    let mut attempts = 0;
    let result: Result<(), CallError<io::Error>> =
        breaker.call_retrying(&config(Jitter::None, &clock), || {
            attempts += 1;
            Err(reset())
        });
    assert!(matches!(result, Err(CallError::Rejected(_))), "{result:?}");
    assert_eq!(attempts, 2, "the third attempt was rejected unrun");
    assert_eq!(
        clock.now() - start,
        secs(1 + 2),
        "no wait after the rejection"
    );
    assert_eq!(breaker.state(), State::Open);
    let metrics = breaker.metrics();
    assert_eq!(
        (
            metrics.failed_calls,
            metrics.rejected_calls,
            metrics.retry_attempts
        ),
        (2, 1, 2)
    );
    assert_eq!(metrics.retry_calls.failed_with_retry, 1);
}

#[test]
fn call_retrying_never_retries_a_permanent_error() {
    let clock = ManualClock::new();
    let breaker = breaker_on("retry.call_retrying_permanent", &clock, 100);
    let start = clock.now();
    let mut attempts = 0;
    let result: Result<(), _> = breaker.call_retrying(&config(Jitter::None, &clock), || {
        attempts += 1;
        Err(io::Error::from(io::ErrorKind::InvalidInput))
    });
    match result {
        Err(CallError::Failed(error)) => assert_eq!(error.kind(), io::ErrorKind::InvalidInput),
        other => panic!("expected the failure, got {other:?}"),
    }
    assert_eq!(attempts, 1);
    assert_eq!(clock.now(), start, "and no time waited");
    let metrics = breaker.metrics();
    assert_eq!((metrics.failed_calls, metrics.retry_attempts), (1, 0));
    assert_eq!(metrics.retry_calls.failed_without_retry, 1);
}

#[test]
fn call_async_retrying_counts_retries_and_skips_permanent_errors_on_any_executor() {
    let clock = ManualClock::new();
    let breaker = breaker_on("retry.call_async_retrying", &clock, 100);
    let sleeper = |delay| {
        clock.advance(delay);
        std::future::ready(())
    };
    let config = config(Jitter::None, &clock);
    let start = clock.now();
    let attempts = AtomicU32::new(0);
    let result = futures::executor::block_on(
        breaker.call_async_retrying(&config, sleeper, || flaky(&attempts, 2)),
    );
    assert_eq!(result.unwrap(), 3);
    assert_eq!(clock.now() - start, secs(1 + 2));

    let permanent = AtomicU32::new(0);
    let result: Result<(), _> =
        futures::executor::block_on(breaker.call_async_retrying(&config, sleeper, || {
            permanent.fetch_add(1, Ordering::Relaxed);
            std::future::ready(Err(io::Error::from(io::ErrorKind::InvalidInput)))
        }));
    assert!(matches!(result, Err(CallError::Failed(_))), "{result:?}");
    assert_eq!(permanent.load(Ordering::Relaxed), 1, "not retried");

    let metrics = breaker.metrics();
    assert_eq!(
        (
            metrics.successful_calls,
            metrics.failed_calls,
            metrics.retry_attempts
        ),
        (1, 3, 2)
    );
    assert_eq!(
        (
            metrics.retry_calls.successful_with_retry,
            metrics.retry_calls.failed_without_retry
        ),
        (1, 1)
    );
}

#[tokio::test(start_paused = true)]
async fn call_async_retrying_ends_at_a_rejection_on_tokio() {
    let breaker = CircuitBreaker::new(
        "retry.call_async_retrying_rejected",
        Config::builder().failure_threshold(3).build().unwrap(),
    );
    let config = RetryConfig::builder()
        .max_retries(10)
        .base_delay(secs(1))
        .jitter(Jitter::None)
        .build()
        .unwrap();
    let start = tokio::time::Instant::now();
    let attempts = AtomicU32::new(0);
    let result = breaker
        .call_async_retrying(&config, TokioSleeper, || flaky(&attempts, u32::MAX))
        .await;
    assert!(matches!(result, Err(CallError::Rejected(_))), "{result:?}");
    assert_eq!(attempts.load(Ordering::Relaxed), 3);
    assert_eq!(
        start.elapsed(),
        secs(1 + 2 + 4),
        "no wait after the rejection"
    );
    let metrics = breaker.metrics();
    assert_eq!(
        (
            metrics.failed_calls,
            metrics.rejected_calls,
            metrics.retry_attempts,
            metrics.retry_calls.failed_with_retry
        ),
        (3, 1, 3, 1)
    );
}

#[test]
fn call_async_retrying_cuts_off_an_attempt_past_attempt_timeout_as_the_breakers_failure() {
    let clock = ManualClock::new();
    let breaker = breaker_on("retry.call_async_retrying_timed", &clock, 100);
    let sleeper = |delay| advance(clock.clone(), delay);
    let config = timed_config(&clock);
    let start = clock.now();
    let attempts = AtomicU32::new(0);
    let result = futures::executor::block_on(
        breaker.call_async_retrying(&config, sleeper, || first_hangs(&attempts)),
    );
    assert_eq!(result.unwrap(), 1, "the hanging first attempt was cut off");
    assert_eq!(
        clock.now() - start,
        secs(2 + 1),
        "its limit, then the delay"
    );
    let metrics = breaker.metrics();
    assert_eq!(
        (
            metrics.failed_calls,
            metrics.slow_calls,
            metrics.successful_calls,
            metrics.retry_attempts
        ),
        (1, 1, 1, 1),
        "the cut-off attempt is the breaker's failure and slow call"
    );

    let hangs = || std::future::pending::<Result<(), io::Error>>();
    let error = futures::executor::block_on(breaker.call_async_retrying(&config, sleeper, hangs))
        .unwrap_err();
    match error {
        CallError::Failed(error) => assert_eq!(error.kind(), io::ErrorKind::TimedOut),
        CallError::Rejected(rejection) => panic!("not rejected: {rejection}"),
    }
}
