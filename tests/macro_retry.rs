//! `#[retry]` alone and above `#[circuit_breaker]`: which errors it
//! retries, that every attempt goes through the breaker, that a rejection
//! ends the retries, the fallbacks, the arguments each attempt gets, and
//! the delays (recorded by a sleeper of the test's own: nothing sleeps).

#[path = "common/api.rs"]
mod api;

use std::future::{ready, Ready};
use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use api::{registered, ApiError};
use circuit_runtime::{circuit_breaker, registry, retry, Config, State};

/// Fails its first `failures` calls, then succeeds.
struct Flaky {
    calls: AtomicU32,
    failures: u32,
}

impl Flaky {
    const fn new(failures: u32) -> Self {
        Flaky {
            calls: AtomicU32::new(0),
            failures,
        }
    }

    fn attempt(&self) -> Result<u32, ApiError> {
        let call = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
        if call <= self.failures {
            Err(ApiError::Down)
        } else {
            Ok(call)
        }
    }

    fn calls(&self) -> u32 {
        self.calls.load(Ordering::Relaxed)
    }
}

static PLAIN: Flaky = Flaky::new(2);

#[retry(max_retries = 3, base_delay = "0s")]
fn plain() -> Result<u32, ApiError> {
    PLAIN.attempt()
}

#[test]
fn errors_without_a_classification_are_retried() {
    assert_eq!(plain(), Ok(3));
    assert_eq!(PLAIN.calls(), 3);
}

static SPENT: Flaky = Flaky::new(10);

#[retry(max_retries = 2, base_delay = "0s")]
fn spent() -> Result<u32, ApiError> {
    SPENT.attempt()
}

#[test]
fn retries_end_after_max_retries_with_the_last_error() {
    assert_eq!(spent(), Err(ApiError::Down));
    assert_eq!(SPENT.calls(), 3);
}

static MISSING: AtomicU32 = AtomicU32::new(0);

#[retry(base_delay = "0s")]
fn missing() -> io::Result<()> {
    MISSING.fetch_add(1, Ordering::Relaxed);
    Err(io::Error::from(io::ErrorKind::NotFound))
}

#[test]
fn a_classified_permanent_error_is_not_retried() {
    assert!(missing().is_err());
    assert_eq!(MISSING.load(Ordering::Relaxed), 1);
}

#[allow(clippy::trivially_copy_pass_by_ref)] // `retry_if` takes `fn(&E) -> bool`
fn is_server_error(status: &u16) -> bool {
    *status >= 500
}

static STATUSES: Mutex<Vec<u16>> = Mutex::new(Vec::new());

#[retry(base_delay = "0s", retry_if = is_server_error)]
fn status() -> Result<(), u16> {
    let mut statuses = STATUSES.lock().unwrap();
    let status = if statuses.len() < 2 { 503 } else { 404 };
    statuses.push(status);
    Err(status)
}

#[test]
fn retry_if_decides_which_errors_to_retry() {
    assert_eq!(status(), Err(404));
    assert_eq!(*STATUSES.lock().unwrap(), [503, 503, 404]);
}

#[retry(max_retries = 2, base_delay = "0s")]
fn consumes(mut name: String, id: &u32, out: &mut Vec<String>) -> Result<(), ApiError> {
    name.push('!');
    out.push(format!("{name}{id}"));
    drop(name); // each attempt has its own copy to consume
    Err(ApiError::Down)
}

#[test]
fn each_attempt_gets_its_own_copy_of_the_arguments() {
    let mut out = Vec::new();
    let _ = consumes("try".to_owned(), &7, &mut out);
    assert_eq!(out, ["try!7", "try!7", "try!7"]);
}

static THROUGH: Flaky = Flaky::new(2);

#[retry(max_retries = 3, base_delay = "0s")]
#[circuit_breaker(name = "macro_retry.through")]
fn through() -> Result<u32, ApiError> {
    THROUGH.attempt()
}

#[test]
fn every_attempt_goes_through_the_breaker_and_retries_are_counted() {
    assert_eq!(through(), Ok(3));
    let metrics = registered("macro_retry.through").metrics();
    assert_eq!(
        (
            metrics.failed_calls,
            metrics.successful_calls,
            metrics.retry_attempts
        ),
        (2, 1, 2)
    );
}

static TRIPPING: Flaky = Flaky::new(100);

#[retry(max_retries = 5, base_delay = "0s")]
#[circuit_breaker(name = "macro_retry.tripping", failure_threshold = 2)]
fn tripping() -> Result<u32, ApiError> {
    TRIPPING.attempt()
}

#[test]
fn a_rejection_ends_the_retries_and_becomes_the_error() {
    registry().configure(
        "macro_retry.tripping",
        Config::builder().failure_threshold(2).build().unwrap(),
    );
    assert_eq!(
        tripping(),
        Err(ApiError::Unavailable),
        "rejected on the third attempt"
    );
    assert_eq!(TRIPPING.calls(), 2, "the rejected attempt never ran");
    let breaker = registered("macro_retry.tripping");
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(breaker.metrics().rejected_calls, 1);
}

static FALLING_BACK: Flaky = Flaky::new(100);

#[retry(max_retries = 2, base_delay = "0s")]
#[circuit_breaker(
    name = "macro_retry.fallback",
    failure_threshold = 10,
    fallback = cached,
    fallback_on = "any_error"
)]
fn with_fallback(id: u32) -> Result<u32, ApiError> {
    FALLING_BACK.attempt().map(|_| id)
}

#[allow(clippy::unnecessary_wraps)] // a fallback returns what the function does
fn cached(id: u32) -> Result<u32, ApiError> {
    Ok(id + 1000)
}

#[test]
fn any_error_falls_back_once_the_retries_are_spent() {
    assert_eq!(with_fallback(1), Ok(1001));
    assert_eq!(
        FALLING_BACK.calls(),
        3,
        "three attempts, then the fallback once"
    );
    let metrics = registered("macro_retry.fallback").metrics();
    assert_eq!(
        (metrics.fallbacks_after_failure, metrics.retry_attempts),
        (1, 2)
    );
}

static SLEPT: Mutex<Vec<Duration>> = Mutex::new(Vec::new());

/// Records each delay instead of waiting it.
fn recorded_sleep(delay: Duration) -> Ready<()> {
    SLEPT.lock().unwrap().push(delay);
    ready(())
}

static ASYNC: Flaky = Flaky::new(3);

#[retry(
    max_retries = 4,
    base_delay = "100ms",
    max_delay = "300ms",
    jitter = "none",
    sleeper = recorded_sleep
)]
#[circuit_breaker(name = "macro_retry.async")]
async fn fetch_async(id: u32) -> Result<u32, ApiError> {
    ASYNC.attempt().map(|_| id)
}

#[test]
fn an_async_fn_waits_with_its_sleeper_through_the_backoff() {
    assert_eq!(futures::executor::block_on(fetch_async(5)), Ok(5));
    assert_eq!(
        *SLEPT.lock().unwrap(),
        [100, 200, 300].map(Duration::from_millis),
        "doubling from 100 ms, capped at 300 ms"
    );
    assert_eq!(registered("macro_retry.async").metrics().retry_attempts, 3);

    assert_eq!(
        futures::executor::block_on(fetch_async(6)),
        Ok(6),
        "at once"
    );
    let metrics = registered("macro_retry.async").metrics();
    assert_eq!(metrics.successful_calls, 2, "each success counted once");
    assert_eq!(
        (
            metrics.retry_calls.successful_with_retry,
            metrics.retry_calls.successful_without_retry
        ),
        (1, 1)
    );
}

static BUDGETED: AtomicU32 = AtomicU32::new(0);

#[retry(max_retries = 3, base_delay = "0s", budget = "macro_retry.budget")]
fn budgeted() -> Result<(), ApiError> {
    BUDGETED.fetch_add(1, Ordering::Relaxed);
    Err(ApiError::Down)
}

#[test]
fn a_named_budget_is_shared_and_limits_retries() {
    use circuit_runtime::retry::RetryBudget;
    RetryBudget::set_named(
        "macro_retry.budget",
        std::sync::Arc::new(
            RetryBudget::builder()
                .retry_ratio(0.5)
                .min_retries_per_second(0)
                .build()
                .unwrap(),
        ),
    );
    for _ in 0..10 {
        let _ = budgeted();
    }
    let retries = BUDGETED.load(Ordering::Relaxed) - 10;
    assert!(
        retries <= 5,
        "{retries} retries: at most half of 10 first attempts"
    );
}

static COUNTED: Flaky = Flaky::new(1);

#[retry(max_retries = 2, base_delay = "0s")]
#[circuit_breaker(name = "macro_retry.counted")]
fn counted(fail_for_good: bool) -> Result<u32, ApiError> {
    if fail_for_good {
        Err(ApiError::Down)
    } else {
        COUNTED.attempt()
    }
}

#[test]
fn each_retried_call_is_counted_by_how_it_ended_and_each_retry_reported() {
    let events = std::sync::Arc::new(Mutex::new(Vec::new()));
    let sink = std::sync::Arc::clone(&events);
    registry().on_event(move |event| {
        if let circuit_runtime::Event::Retry(retry) = event {
            if retry.name == "macro_retry.counted" {
                sink.lock()
                    .unwrap()
                    .push((retry.attempt, retry.delay, retry.category));
            }
        }
    });
    assert!(counted(false).is_ok(), "a retry, then success");
    assert!(counted(false).is_ok(), "success at once");
    assert!(counted(true).is_err(), "two retries, then the last error");
    let metrics = registered("macro_retry.counted").metrics();
    assert_eq!(
        (metrics.successful_calls, metrics.failed_calls),
        (2, 4),
        "each attempt counted once by the breaker"
    );
    let calls = metrics.retry_calls;
    assert_eq!(
        (
            calls.successful_without_retry,
            calls.successful_with_retry,
            calls.failed_with_retry,
            calls.failed_without_retry,
            calls.budget_exhausted
        ),
        (1, 1, 1, 0, 0)
    );
    assert_eq!(
        *events.lock().unwrap(),
        [
            (2, Duration::ZERO, None),
            (2, Duration::ZERO, None),
            (3, Duration::ZERO, None)
        ],
        "unclassified errors carry no category"
    );
}
