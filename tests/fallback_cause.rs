//! Fallbacks that know why they run: the attribute's two fallback shapes,
//! sync and async, and the programmatic `call_or_else`.

use std::time::Duration;

use circuit_runtime::{
    circuit_breaker, registry, CircuitBreaker, CircuitOpenError, Config, FallbackCause,
    FallbackReason, ManualClock, State,
};

#[derive(Clone, Debug, PartialEq)]
enum ApiError {
    Down(u32),
    Unavailable,
}

impl From<CircuitOpenError> for ApiError {
    fn from(_: CircuitOpenError) -> Self {
        ApiError::Unavailable
    }
}

/// What a fallback saw, as a test can compare it.
fn seen(cause: &FallbackCause<'_, ApiError>) -> String {
    match cause {
        FallbackCause::Rejected(open) => format!(
            "rejected by {} ({}), retry in {:?}",
            open.name(),
            open.state(),
            open.retry_after()
        ),
        FallbackCause::Failed(error) => format!("failed with {error:?}"),
    }
}

fn on_a_manual_clock(name: &str) -> ManualClock {
    let clock = ManualClock::new();
    registry().configure(
        name,
        Config::builder()
            .failure_threshold(1)
            .recovery_timeout(Duration::from_secs(30))
            .clock(clock.clone())
            .build()
            .unwrap(),
    );
    clock
}

#[circuit_breaker(name = "fallback_cause.sync", fallback = explain, fallback_on = "any_error")]
fn fetch(id: u32, healthy: bool) -> Result<String, ApiError> {
    if healthy {
        Ok(format!("fresh {id}"))
    } else {
        Err(ApiError::Down(id))
    }
}

#[allow(clippy::unnecessary_wraps, clippy::needless_pass_by_value)]
fn explain(
    id: u32,
    _healthy: bool,
    cause: FallbackCause<'_, ApiError>,
) -> Result<String, ApiError> {
    Ok(format!("{id}: {}", seen(&cause)))
}

#[test]
fn a_sync_fallback_is_told_whether_the_call_failed_or_was_rejected() {
    let clock = on_a_manual_clock("fallback_cause.sync");
    assert_eq!(fetch(1, false).unwrap(), "1: failed with Down(1)");
    clock.advance(Duration::from_secs(10));
    assert_eq!(
        fetch(2, true).unwrap(),
        "2: rejected by fallback_cause.sync (open), retry in Some(20s)"
    );
    let metrics = registry().get("fallback_cause.sync").unwrap().metrics();
    assert_eq!(
        (
            metrics.fallbacks_after_failure,
            metrics.fallbacks_after_rejection
        ),
        (1, 1)
    );
}

#[circuit_breaker(name = "fallback_cause.plain", fallback = plain)]
fn fetch_plain(id: u32) -> Result<String, ApiError> {
    Err(ApiError::Down(id))
}

#[allow(clippy::unnecessary_wraps)]
fn plain(id: u32) -> Result<String, ApiError> {
    Ok(format!("cached {id}"))
}

#[test]
fn a_fallback_without_the_cause_still_works() {
    let _clock = on_a_manual_clock("fallback_cause.plain");
    assert_eq!(fetch_plain(1), Err(ApiError::Down(1)));
    assert_eq!(fetch_plain(2).unwrap(), "cached 2");
}

#[circuit_breaker(name = "fallback_cause.async", fallback = explain_async, fallback_on = "any_error")]
async fn fetch_async(id: u32, healthy: bool) -> Result<String, ApiError> {
    std::future::ready(()).await;
    if healthy {
        Ok(format!("fresh {id}"))
    } else {
        Err(ApiError::Down(id))
    }
}

#[allow(
    clippy::unused_async,
    clippy::unnecessary_wraps,
    clippy::needless_pass_by_value
)]
async fn explain_async(
    id: u32,
    _healthy: bool,
    cause: FallbackCause<'_, ApiError>,
) -> Result<String, ApiError> {
    std::future::ready(()).await;
    Ok(format!("{id}: {}", seen(&cause)))
}

#[test]
fn an_async_fallback_is_told_why_too() {
    let clock = on_a_manual_clock("fallback_cause.async");
    futures::executor::block_on(async {
        assert_eq!(
            fetch_async(1, false).await.unwrap(),
            "1: failed with Down(1)"
        );
        clock.advance(Duration::from_secs(30));
        assert_eq!(
            fetch_async(2, true).await.unwrap(),
            "fresh 2",
            "the trial closes it"
        );
        assert_eq!(
            registry().get("fallback_cause.async").unwrap().state(),
            State::Closed
        );
        registry().get("fallback_cause.async").unwrap().force_open();
        assert_eq!(
            fetch_async(3, true).await.unwrap(),
            "3: rejected by fallback_cause.async (forced_open), retry in None"
        );
    });
}

struct Quotes {
    prefix: &'static str,
}

impl Quotes {
    #[circuit_breaker(name = "fallback_cause.method", fallback = Self::stale)]
    fn quote(&self, symbol: &str) -> Result<String, ApiError> {
        Err(ApiError::Down(symbol.len().try_into().unwrap()))
    }

    #[allow(clippy::unnecessary_wraps, clippy::needless_pass_by_value)]
    fn stale(&self, symbol: &str, cause: FallbackCause<'_, ApiError>) -> Result<String, ApiError> {
        Ok(format!("{}{symbol}: {}", self.prefix, cause.reason()))
    }
}

#[test]
fn a_methods_fallback_gets_the_receiver_the_arguments_and_the_cause() {
    let _clock = on_a_manual_clock("fallback_cause.method");
    let quotes = Quotes { prefix: "stale " };
    assert_eq!(quotes.quote("ACME"), Err(ApiError::Down(4)));
    assert_eq!(quotes.quote("ACME").unwrap(), "stale ACME: rejected");
}

#[circuit_runtime::retry(max_retries = 1, base_delay = "0s", jitter = "none")]
#[circuit_breaker(
    name = "fallback_cause.retried",
    failure_threshold = 5,
    fallback = explain,
    fallback_on = "any_error"
)]
fn fetch_retried(id: u32, healthy: bool) -> Result<String, ApiError> {
    if healthy {
        Ok(format!("fresh {id}"))
    } else {
        Err(ApiError::Down(id))
    }
}

#[test]
fn a_retried_call_tells_its_fallback_why_once_the_retries_are_spent() {
    assert_eq!(fetch_retried(4, false).unwrap(), "4: failed with Down(4)");
    registry()
        .get("fallback_cause.retried")
        .unwrap()
        .force_open();
    assert_eq!(
        fetch_retried(5, true).unwrap(),
        "5: rejected by fallback_cause.retried (forced_open), retry in None"
    );
}

#[test]
fn call_or_else_tells_the_fallback_why_and_counts_it() {
    let clock = ManualClock::new();
    let breaker = CircuitBreaker::new(
        "fallback_cause.call_or_else",
        Config::builder()
            .failure_threshold(1)
            .recovery_timeout(Duration::from_secs(5))
            .clock(clock)
            .build()
            .unwrap(),
    );
    let fallback = |cause: FallbackCause<'_, ApiError>| Ok::<_, ApiError>(seen(&cause));
    assert_eq!(
        breaker
            .call_or_else(|| Ok("fresh".into()), fallback)
            .unwrap(),
        "fresh"
    );
    assert_eq!(
        breaker
            .call_or_else(|| Err(ApiError::Down(7)), fallback)
            .unwrap(),
        "failed with Down(7)"
    );
    assert_eq!(
        breaker
            .call_or_else(|| Ok("fresh".into()), fallback)
            .unwrap(),
        "rejected by fallback_cause.call_or_else (open), retry in Some(5s)"
    );
    let failing = |cause: FallbackCause<'_, ApiError>| match cause {
        FallbackCause::Failed(error) => Err(error.clone()),
        FallbackCause::Rejected(_) => Err(ApiError::Unavailable),
    };
    assert_eq!(
        breaker.call_or_else(|| Ok(String::new()), failing),
        Err(ApiError::Unavailable),
        "a fallback may fail too"
    );
    let metrics = breaker.metrics();
    assert_eq!(
        (
            metrics.fallbacks_after_failure,
            metrics.fallbacks_after_rejection
        ),
        (1, 2)
    );
}

#[test]
fn call_async_or_else_awaits_the_fallback_with_its_reason() {
    let breaker = CircuitBreaker::new("fallback_cause.async_or_else", Config::default());
    futures::executor::block_on(async {
        let failed = breaker
            .call_async_or_else(async { Err::<u32, _>(ApiError::Down(3)) }, |cause| {
                let reason = cause.reason();
                async move {
                    Ok(if reason == FallbackReason::Failed {
                        1
                    } else {
                        2
                    })
                }
            })
            .await;
        assert_eq!(failed, Ok(1));
        breaker.force_open();
        let rejected = breaker
            .call_async_or_else(async { Ok::<u32, ApiError>(0) }, |cause| {
                let reason = cause.reason();
                async move {
                    Ok(if reason == FallbackReason::Rejected {
                        2
                    } else {
                        1
                    })
                }
            })
            .await;
        assert_eq!(rejected, Ok(2));
    });
}

#[test]
fn a_panic_in_call_or_else_counts_as_a_failure_and_skips_the_fallback() {
    let breaker = CircuitBreaker::new("fallback_cause.panic", Config::default());
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        breaker.call_or_else(|| -> Result<u32, ApiError> { panic!("bug") }, |_| Ok(0))
    }));
    assert!(unwound.is_err());
    let metrics = breaker.metrics();
    assert_eq!(
        (metrics.failed_calls, metrics.fallbacks_after_failure),
        (1, 0)
    );
}
