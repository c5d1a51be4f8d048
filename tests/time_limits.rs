//! Time limits on async calls: a call that runs too long is cut off,
//! dropped, and counted as a failure and a slow call; the limit is
//! measured by the caller's sleeper (tokio's paused clock here), so no
//! test waits for real.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use circuit_runtime::{
    CallError, CircuitBreaker, Config, State, TimeoutError, Transition, TransitionCause,
};

fn secs(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

/// Sets a flag when dropped: shows the timed-out call was cancelled.
struct DropFlag(Arc<AtomicU32>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

async fn takes(duration: Duration, dropped: Arc<AtomicU32>) -> Result<&'static str, TimeoutError> {
    let _flag = DropFlag(dropped);
    tokio::time::sleep(duration).await;
    Ok("done")
}

#[tokio::test(start_paused = true)]
async fn a_call_past_its_limit_is_cut_off_dropped_and_counted_as_a_slow_failure() {
    let breaker = CircuitBreaker::new("limits.cut", Config::default());
    let dropped = Arc::new(AtomicU32::new(0));
    let start = tokio::time::Instant::now();
    let call = takes(secs(10), Arc::clone(&dropped));
    let result = breaker
        .call_async_timeout(secs(2), tokio::time::sleep, call)
        .await;
    match result {
        Err(CallError::Failed(timeout)) => {
            assert_eq!((timeout.name(), timeout.limit()), ("limits.cut", secs(2)));
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert_eq!(
        start.elapsed(),
        secs(2),
        "cut off at the limit, not at the end"
    );
    assert_eq!(dropped.load(Ordering::Relaxed), 1, "the call was dropped");
    let metrics = breaker.metrics();
    assert_eq!((metrics.failed_calls, metrics.slow_calls), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn a_call_within_its_limit_is_untouched() {
    let breaker = CircuitBreaker::new("limits.within", Config::default());
    let dropped = Arc::new(AtomicU32::new(0));
    let result = breaker
        .call_async_timeout(secs(2), tokio::time::sleep, takes(secs(1), dropped))
        .await;
    assert_eq!(result, Ok("done"));
    let metrics = breaker.metrics();
    assert_eq!(
        (
            metrics.successful_calls,
            metrics.failed_calls,
            metrics.slow_calls
        ),
        (1, 0, 0)
    );
}

#[tokio::test(start_paused = true)]
async fn timeouts_trip_the_breaker_and_a_rejected_call_starts_no_timer() {
    let config = Config::builder().failure_threshold(2).build().unwrap();
    let breaker = CircuitBreaker::new("limits.trip", config);
    let sleeps = AtomicU32::new(0);
    let sleeper = |delay| {
        sleeps.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(delay)
    };
    for _ in 0..2 {
        let dropped = Arc::new(AtomicU32::new(0));
        let call = takes(secs(60), dropped);
        let _ = breaker.call_async_timeout(secs(1), sleeper, call).await;
    }
    assert_eq!(breaker.state(), State::Open);
    let dropped = Arc::new(AtomicU32::new(0));
    let result = breaker
        .call_async_timeout(secs(1), sleeper, takes(secs(60), Arc::clone(&dropped)))
        .await;
    assert!(matches!(result, Err(CallError::Rejected(_))), "{result:?}");
    assert_eq!(
        sleeps.load(Ordering::Relaxed),
        2,
        "the rejected call set no timer"
    );
    assert_eq!(dropped.load(Ordering::Relaxed), 0, "and never started");
}

#[tokio::test(start_paused = true)]
async fn timeouts_count_toward_a_slow_call_rate() {
    let config = Config::builder()
        .slow_call_duration(secs(30))
        .slow_call_rate_threshold(0.5)
        .window_size(2)
        .minimum_calls(2)
        .build()
        .unwrap();
    let breaker = CircuitBreaker::new("limits.slow_rate", config);
    let causes = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&causes);
    breaker.on_transition(move |t: &Transition| sink.lock().unwrap().push(t.cause));
    for _ in 0..2 {
        let call = takes(secs(60), Arc::new(AtomicU32::new(0)));
        let _ = breaker
            .call_async_timeout(secs(1), tokio::time::sleep, call)
            .await;
    }
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(
        *causes.lock().unwrap(),
        [TransitionCause::SlowCallRate],
        "cut off at 1 s, the calls still count as slow, though under slow_call_duration"
    );
}

#[test]
fn any_executor_and_any_sleeper_work() {
    let breaker = CircuitBreaker::new("limits.futures", Config::default());
    // A sleeper that is done at once: a call that is not ready on its first
    // poll is cut off.
    let result = futures::executor::block_on(breaker.call_async_timeout(
        secs(5),
        |_| std::future::ready(()),
        std::future::pending::<Result<(), TimeoutError>>(),
    ));
    assert!(matches!(result, Err(CallError::Failed(_))), "{result:?}");
    let ready = futures::executor::block_on(breaker.call_async_timeout(
        secs(5),
        |_| std::future::ready(()),
        async { Ok::<_, TimeoutError>(7) },
    ));
    assert_eq!(ready, Ok(7), "a call ready at once is never cut off");
}

mod attribute {
    //! `timeout` on `#[circuit_breaker]`: the same limit, written once.

    use super::*;
    use circuit_runtime::{circuit_breaker, registry, CircuitOpenError};

    #[derive(Debug, PartialEq)]
    enum ApiError {
        TimedOut(Duration),
        Unavailable,
    }

    impl From<TimeoutError> for ApiError {
        fn from(timeout: TimeoutError) -> Self {
            ApiError::TimedOut(timeout.limit())
        }
    }

    impl From<CircuitOpenError> for ApiError {
        fn from(_: CircuitOpenError) -> Self {
            ApiError::Unavailable
        }
    }

    #[circuit_breaker(
        name = "limits.attribute",
        failure_threshold = 2,
        timeout = "2s",
        sleeper = tokio::time::sleep
    )]
    async fn report(takes: Duration) -> Result<&'static str, ApiError> {
        tokio::time::sleep(takes).await;
        Ok("report")
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_call_times_out_and_counts_toward_opening() {
        assert_eq!(report(secs(1)).await, Ok("report"));
        let start = tokio::time::Instant::now();
        assert_eq!(report(secs(60)).await, Err(ApiError::TimedOut(secs(2))));
        assert_eq!(start.elapsed(), secs(2));
        assert_eq!(report(secs(60)).await, Err(ApiError::TimedOut(secs(2))));
        let breaker = registry().get("limits.attribute").unwrap();
        assert_eq!(breaker.state(), State::Open);
        assert_eq!(report(secs(1)).await, Err(ApiError::Unavailable));
        let metrics = breaker.metrics();
        assert_eq!((metrics.failed_calls, metrics.slow_calls), (2, 2));
    }

    #[circuit_breaker(
        name = "limits.attribute_fallback",
        timeout = "1s",
        sleeper = tokio::time::sleep,
        fallback = cached,
        fallback_on = "any_error"
    )]
    async fn quote(takes: Duration) -> Result<&'static str, ApiError> {
        tokio::time::sleep(takes).await;
        Ok("fresh")
    }

    #[allow(clippy::unused_async)] // a fallback of an `async fn` is one too
    async fn cached(_takes: Duration) -> Result<&'static str, ApiError> {
        Ok("cached")
    }

    #[tokio::test(start_paused = true)]
    async fn a_timed_out_call_goes_to_the_fallback() {
        assert_eq!(quote(Duration::from_millis(500)).await, Ok("fresh"));
        assert_eq!(quote(secs(5)).await, Ok("cached"));
        let metrics = registry()
            .get("limits.attribute_fallback")
            .unwrap()
            .metrics();
        assert_eq!(
            (metrics.failed_calls, metrics.fallbacks_after_failure),
            (1, 1)
        );
    }
}

mod retried {
    //! Each attempt of a `#[retry]` cut off at its limit.

    use super::*;
    use circuit_runtime::{circuit_breaker, registry, retry, CircuitOpenError};

    #[derive(Debug, PartialEq)]
    enum ApiError {
        TimedOut,
        Unavailable,
    }

    impl From<TimeoutError> for ApiError {
        fn from(_: TimeoutError) -> Self {
            ApiError::TimedOut
        }
    }

    impl From<CircuitOpenError> for ApiError {
        fn from(_: CircuitOpenError) -> Self {
            ApiError::Unavailable
        }
    }

    static PLAIN_ATTEMPTS: AtomicU32 = AtomicU32::new(0);

    /// Hangs on its first two attempts, answers on the third.
    async fn hangs_twice() -> Result<u32, ApiError> {
        let attempt = PLAIN_ATTEMPTS.fetch_add(1, Ordering::Relaxed) + 1;
        if attempt <= 2 {
            tokio::time::sleep(secs(3600)).await;
        }
        Ok(attempt)
    }

    #[retry(
        max_retries = 3,
        base_delay = "100ms",
        jitter = "none",
        attempt_timeout = "1s",
        sleeper = tokio::time::sleep
    )]
    async fn plain() -> Result<u32, ApiError> {
        hangs_twice().await
    }

    #[tokio::test(start_paused = true)]
    async fn a_hanging_attempt_is_cut_off_and_retried() {
        let start = tokio::time::Instant::now();
        assert_eq!(plain().await, Ok(3));
        // 1 s cut off, 100 ms, 1 s cut off, 200 ms, then at once.
        assert_eq!(start.elapsed(), Duration::from_millis(2300));
    }

    static THROUGH_ATTEMPTS: AtomicU32 = AtomicU32::new(0);

    #[retry(max_retries = 1, base_delay = "0s", sleeper = tokio::time::sleep)]
    #[circuit_breaker(name = "limits.retried", timeout = "1s", sleeper = tokio::time::sleep)]
    async fn through() -> Result<u32, ApiError> {
        let attempt = THROUGH_ATTEMPTS.fetch_add(1, Ordering::Relaxed) + 1;
        tokio::time::sleep(secs(3600)).await;
        Ok(attempt)
    }

    #[tokio::test(start_paused = true)]
    async fn the_breakers_timeout_limits_each_attempt_and_counts_it() {
        assert_eq!(through().await, Err(ApiError::TimedOut));
        assert_eq!(THROUGH_ATTEMPTS.load(Ordering::Relaxed), 2);
        let metrics = registry().get("limits.retried").unwrap().metrics();
        assert_eq!(
            (
                metrics.failed_calls,
                metrics.slow_calls,
                metrics.retry_attempts
            ),
            (2, 2, 1)
        );
    }
}
