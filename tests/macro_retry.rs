//! `#[retry]` alone and above `#[circuit_breaker]`: which errors it
//! retries, that every attempt goes through the breaker, that a rejection
//! ends the retries, the fallbacks, the arguments each attempt gets, the
//! delays (recorded by a sleeper of the test's own: nothing sleeps), named
//! budgets shared across call sites, and `attempt_timeout` through a
//! breaker.

#[path = "common/api.rs"]
mod api;

use std::future::{ready, Ready};
use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use api::{registered, ApiError};
use circuit_runtime::retry::{ErrorCategory, RetryBudget};
use circuit_runtime::{circuit_breaker, registry, retry, Config, Event, ManualClock, State};

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

/// The error of attempt number `.0` of one call.
#[derive(Debug, PartialEq)]
struct FailedAttempt(u32);

impl From<circuit_runtime::CircuitOpenError> for FailedAttempt {
    fn from(_: circuit_runtime::CircuitOpenError) -> Self {
        FailedAttempt(0)
    }
}

/// Counts an attempt of one call, and fails it with its number.
fn fail(attempts: &AtomicU32) -> Result<(), FailedAttempt> {
    Err(FailedAttempt(attempts.fetch_add(1, Ordering::Relaxed) + 1))
}

/// A budget of exactly `floor * 10` retries while `clock` stands still
/// (the window is ten seconds), plus `ratio` of the first attempts.
fn frozen_budget(ratio: f64, floor: u32, clock: &ManualClock) -> Arc<RetryBudget> {
    Arc::new(
        RetryBudget::builder()
            .retry_ratio(ratio)
            .min_retries_per_second(floor)
            .clock(clock.clone())
            .build()
            .unwrap(),
    )
}

#[retry(max_retries = 3, base_delay = "0s", budget = "macro_retry.shared")]
fn left(attempts: &AtomicU32) -> Result<(), FailedAttempt> {
    fail(attempts)
}

#[retry(max_retries = 3, base_delay = "0s", budget = "macro_retry.shared")]
fn right(attempts: &AtomicU32) -> Result<(), FailedAttempt> {
    fail(attempts)
}

#[test]
fn a_named_budget_spent_at_one_call_site_ends_the_retries_of_another_with_the_last_error() {
    let clock = ManualClock::new();
    let budget = frozen_budget(0.0, 1, &clock);
    RetryBudget::set_named("macro_retry.shared", Arc::clone(&budget));
    assert!(Arc::ptr_eq(
        &RetryBudget::named("macro_retry.shared"),
        &budget
    ));

    // Ten retries in the window: three calls of `left` take nine.
    for _ in 0..3 {
        let attempts = AtomicU32::new(0);
        assert_eq!(left(&attempts), Err(FailedAttempt(4)));
        assert_eq!(attempts.load(Ordering::Relaxed), 4, "three retries");
    }
    let attempts = AtomicU32::new(0);
    assert_eq!(
        left(&attempts),
        Err(FailedAttempt(2)),
        "the tenth retry, then the budget ends it with its last error"
    );
    assert_eq!(attempts.load(Ordering::Relaxed), 2);

    let attempts = AtomicU32::new(0);
    assert_eq!(
        right(&attempts),
        Err(FailedAttempt(1)),
        "`left` spent the budget `right` shares"
    );
    assert_eq!(attempts.load(Ordering::Relaxed), 1, "no retry at all");

    // Once the window has moved past those retries, `right` retries again,
    // and spends the budget `left` draws from.
    clock.advance(Duration::from_secs(10));
    for _ in 0..3 {
        let attempts = AtomicU32::new(0);
        assert_eq!(right(&attempts), Err(FailedAttempt(4)));
    }
    let attempts = AtomicU32::new(0);
    assert_eq!(left(&attempts), Err(FailedAttempt(2)));
}

#[retry(max_retries = 1000, base_delay = "0s", budget = "macro_retry.storm")]
fn storm_a(attempts: &AtomicU32) -> Result<(), FailedAttempt> {
    fail(attempts)
}

#[retry(max_retries = 1000, base_delay = "0s", budget = "macro_retry.storm")]
fn storm_b(attempts: &AtomicU32) -> Result<(), FailedAttempt> {
    fail(attempts)
}

#[test]
fn under_load_retries_stay_within_the_budgets_share_plus_its_floor() {
    let clock = ManualClock::new();
    RetryBudget::set_named("macro_retry.storm", frozen_budget(0.25, 1, &clock));
    let attempts = AtomicU32::new(0);
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for call in 0..250 {
                    let own = AtomicU32::new(0);
                    let result = if call % 2 == 0 {
                        storm_a(&own)
                    } else {
                        storm_b(&own)
                    };
                    let made = own.load(Ordering::Relaxed);
                    assert_eq!(result, Err(FailedAttempt(made)), "the last error");
                    attempts.fetch_add(made, Ordering::Relaxed);
                }
            });
        }
    });
    let retries = attempts.load(Ordering::Relaxed) - 1000;
    // 25% of 1000 first attempts, plus 1 a second over the 10 s window.
    // Every call retries until the budget says no (1000 retries would be
    // allowed), and the last first attempt's call asks after all 1000 were
    // counted: the budget is spent to the last retry, and not beyond.
    assert_eq!(retries, 250 + 10);
}

#[retry(max_retries = 1, base_delay = "0s")]
#[circuit_breaker(name = "macro_retry.classified")]
fn reset_once(attempts: &AtomicU32) -> io::Result<u32> {
    let attempt = attempts.fetch_add(1, Ordering::Relaxed) + 1;
    if attempt == 1 {
        Err(io::Error::from(io::ErrorKind::ConnectionReset))
    } else {
        Ok(attempt)
    }
}

/// A retry's attempt number and its error's category, as an observer saw
/// them.
type Retried = (u32, Option<ErrorCategory>);

#[test]
fn a_retry_event_carries_the_category_of_a_classified_error() {
    let seen = |sink: Arc<Mutex<Vec<Retried>>>| {
        move |event: &Event| {
            if let Event::Retry(retry) = event {
                if retry.name == "macro_retry.classified" {
                    sink.lock().unwrap().push((retry.attempt, retry.category));
                }
            }
        }
    };
    let by_registry = Arc::new(Mutex::new(Vec::new()));
    registry().on_event(seen(Arc::clone(&by_registry)));
    assert_eq!(reset_once(&AtomicU32::new(0)).unwrap(), 2);
    assert_eq!(
        *by_registry.lock().unwrap(),
        [(2, Some(ErrorCategory::Network))]
    );

    let by_breaker = Arc::new(Mutex::new(Vec::new()));
    registered("macro_retry.classified").on_event(seen(Arc::clone(&by_breaker)));
    assert_eq!(reset_once(&AtomicU32::new(0)).unwrap(), 2);
    assert_eq!(
        *by_breaker.lock().unwrap(),
        [(2, Some(ErrorCategory::Network))]
    );
    assert_eq!(by_registry.lock().unwrap().len(), 2);
}

/// Completes at once: the test's delays take no time.
fn at_once(_: Duration) -> Ready<()> {
    ready(())
}

#[retry(
    max_retries = 3,
    base_delay = "0s",
    budget = "macro_retry.async_budget",
    sleeper = at_once
)]
#[circuit_breaker(name = "macro_retry.async_budget", failure_threshold = 100)]
async fn spends_budget(attempts: &AtomicU32) -> Result<(), FailedAttempt> {
    fail(attempts)
}

#[test]
fn a_spent_budget_through_the_breaker_is_counted_as_budget_exhausted() {
    RetryBudget::set_named(
        "macro_retry.async_budget",
        frozen_budget(0.0, 1, &ManualClock::new()),
    );
    let call = |expected: u32| {
        let attempts = AtomicU32::new(0);
        let result = futures::executor::block_on(spends_budget(&attempts));
        assert_eq!(result, Err(FailedAttempt(expected)), "the last error");
        assert_eq!(attempts.load(Ordering::Relaxed), expected);
    };
    // Ten retries: three calls retry three times each, the fourth once.
    for _ in 0..3 {
        call(4);
    }
    call(2);
    call(1);
    let metrics = registered("macro_retry.async_budget").metrics();
    assert_eq!(
        (metrics.failed_calls, metrics.retry_attempts),
        (3 * 4 + 2 + 1, 10)
    );
    let calls = metrics.retry_calls;
    assert_eq!(
        (
            calls.failed_with_retry,
            calls.budget_exhausted,
            calls.failed_without_retry
        ),
        (3, 2, 0)
    );
}

static JITTERED: Mutex<Vec<Duration>> = Mutex::new(Vec::new());

/// Records each delay instead of waiting it.
fn jittered_sleep(delay: Duration) -> Ready<()> {
    JITTERED.lock().unwrap().push(delay);
    ready(())
}

#[retry(
    max_retries = 4,
    base_delay = "100ms",
    max_delay = "500ms",
    sleeper = jittered_sleep
)]
async fn default_jitter() -> Result<(), ApiError> {
    Err(ApiError::Down)
}

#[test]
fn without_jitter_set_delays_are_fully_jittered_below_the_exponential_ones() {
    let exponential = [100, 200, 400, 500].map(Duration::from_millis);
    let unjittered: Duration = exponential.iter().sum();
    let mut delays = Vec::new();
    for _ in 0..25 {
        assert_eq!(
            futures::executor::block_on(default_jitter()),
            Err(ApiError::Down)
        );
        let call: Vec<Duration> = std::mem::take(&mut *JITTERED.lock().unwrap());
        assert_eq!(call.len(), 4, "{call:?}");
        for (delay, bound) in call.iter().zip(exponential) {
            assert!(*delay <= bound, "{call:?}");
        }
        assert!(call.iter().sum::<Duration>() <= unjittered, "{call:?}");
        delays.push(call);
    }
    assert!(
        delays
            .iter()
            .flatten()
            .zip(exponential.iter().cycle())
            .any(|(delay, bound)| *delay < *bound / 2),
        "some delay below half its exponential one, as only full jitter goes: {delays:?}"
    );
}

mod attempt_limit {
    //! `attempt_timeout` on `#[retry]` above a `#[circuit_breaker]` that
    //! has no `timeout` of its own.

    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use circuit_runtime::{circuit_breaker, retry, CircuitOpenError, TimeoutError};

    use super::api::registered;

    #[derive(Debug, PartialEq)]
    enum CallFailed {
        TimedOut(Duration),
        Unavailable,
    }

    impl From<TimeoutError> for CallFailed {
        fn from(timeout: TimeoutError) -> Self {
            CallFailed::TimedOut(timeout.limit())
        }
    }

    impl From<CircuitOpenError> for CallFailed {
        fn from(_: CircuitOpenError) -> Self {
            CallFailed::Unavailable
        }
    }

    /// Counts its drop: shows a cut-off attempt was cancelled.
    struct Dropped(Arc<AtomicU32>);

    impl Drop for Dropped {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Hangs for an hour on its first `hangs` attempts, then answers with
    /// the attempt's number.
    #[retry(
        max_retries = 2,
        base_delay = "100ms",
        jitter = "none",
        attempt_timeout = "1s",
        sleeper = tokio::time::sleep
    )]
    #[circuit_breaker(name = "macro_retry.attempt_timeout", failure_threshold = 100)]
    async fn hangs(
        hangs: u32,
        attempts: &AtomicU32,
        dropped: &Arc<AtomicU32>,
    ) -> Result<u32, CallFailed> {
        let attempt = attempts.fetch_add(1, Ordering::Relaxed) + 1;
        let _flag = Dropped(Arc::clone(dropped));
        if attempt <= hangs {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        Ok(attempt)
    }

    #[tokio::test(start_paused = true)]
    async fn a_hanging_attempt_is_cut_off_counted_as_a_slow_failure_and_retried() {
        let (attempts, dropped) = (AtomicU32::new(0), Arc::new(AtomicU32::new(0)));
        let start = tokio::time::Instant::now();
        assert_eq!(hangs(2, &attempts, &dropped).await, Ok(3));
        // 1 s cut off, 100 ms, 1 s cut off, 200 ms, then at once.
        assert_eq!(start.elapsed(), Duration::from_millis(2300));
        assert_eq!(dropped.load(Ordering::Relaxed), 3, "every attempt dropped");
        let metrics = registered("macro_retry.attempt_timeout").metrics();
        assert_eq!(
            (
                metrics.successful_calls,
                metrics.failed_calls,
                metrics.slow_calls,
                metrics.retry_attempts,
                metrics.retry_calls.successful_with_retry
            ),
            (1, 2, 2, 2, 1)
        );

        let (attempts, dropped) = (AtomicU32::new(0), Arc::new(AtomicU32::new(0)));
        assert_eq!(
            hangs(u32::MAX, &attempts, &dropped).await,
            Err(CallFailed::TimedOut(Duration::from_secs(1))),
            "every attempt cut off: the last one's timeout"
        );
        assert_eq!(attempts.load(Ordering::Relaxed), 3);
        let metrics = registered("macro_retry.attempt_timeout").metrics();
        assert_eq!(
            (
                metrics.failed_calls,
                metrics.slow_calls,
                metrics.retry_calls.failed_with_retry
            ),
            (2 + 3, 2 + 3, 1)
        );
    }
}
