//! `#[circuit_breaker]` on `async fn`s, under tokio and under
//! `futures::executor::block_on`, observed through the global registry.

use std::time::Duration;

use circuit_runtime::{circuit_breaker, registry, CircuitOpenError, Config, ManualClock, State};

#[path = "common/poll.rs"]
mod poll;
use poll::poll_once;

#[derive(Clone, Debug, PartialEq)]
enum FetchError {
    Down,
    Unavailable,
}

impl From<CircuitOpenError> for FetchError {
    fn from(_: CircuitOpenError) -> Self {
        FetchError::Unavailable
    }
}

async fn remote(healthy: bool) -> Result<u32, FetchError> {
    tokio::task::yield_now().await;
    if healthy {
        Ok(42)
    } else {
        Err(FetchError::Down)
    }
}

#[circuit_breaker(name = "macro_async.tokio", failure_threshold = 2, fallback = stale)]
async fn fetch(healthy: bool) -> Result<u32, FetchError> {
    let value = remote(healthy).await?;
    Ok(value)
}

#[allow(clippy::unused_async, clippy::unnecessary_wraps)]
async fn stale(healthy: bool) -> Result<u32, FetchError> {
    Ok(u32::from(healthy))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_calls_trip_and_reject_into_an_awaited_fallback_under_tokio() {
    assert_eq!(fetch(true).await, Ok(42));
    assert_eq!(fetch(false).await, Err(FetchError::Down));
    let spawned = tokio::spawn(fetch(false)).await.unwrap();
    assert_eq!(spawned, Err(FetchError::Down), "the future is Send");
    assert_eq!(
        registry().get("macro_async.tokio").unwrap().state(),
        State::Open
    );
    assert_eq!(
        fetch(true).await,
        Ok(1),
        "rejected: the async fallback answers"
    );
}

#[circuit_breaker(name = "macro_async.block_on", failure_threshold = 1)]
async fn on_any_executor(healthy: bool) -> Result<u32, FetchError> {
    if healthy {
        Ok(5)
    } else {
        Err(FetchError::Down)
    }
}

#[test]
fn async_calls_run_on_any_executor() {
    futures::executor::block_on(async {
        assert_eq!(on_any_executor(true).await, Ok(5));
        assert_eq!(on_any_executor(false).await, Err(FetchError::Down));
        assert_eq!(on_any_executor(true).await, Err(FetchError::Unavailable));
    });
}

#[circuit_breaker(name = "macro_async.panic", failure_threshold = 1)]
async fn explodes() -> Result<(), FetchError> {
    tokio::task::yield_now().await;
    panic!("the body panicked")
}

#[tokio::test]
async fn a_panicking_async_body_counts_as_a_failure() {
    let joined = tokio::spawn(explodes()).await;
    assert!(joined.unwrap_err().is_panic());
    let breaker = registry().get("macro_async.panic").unwrap();
    assert_eq!(breaker.metrics().failed_calls, 1);
    assert_eq!(breaker.state(), State::Open);
}

#[circuit_breaker(name = "macro_async.cancel")]
async fn hangs(hang: bool) -> Result<(), FetchError> {
    if hang {
        std::future::pending::<()>().await;
    }
    Ok(())
}

#[test]
fn a_cancelled_async_call_gives_back_its_half_open_slot() {
    let clock = ManualClock::new();
    let config = Config::builder()
        .failure_threshold(1)
        .half_open_max_calls(1)
        .recovery_timeout(Duration::from_secs(10))
        .clock(clock.clone())
        .build()
        .unwrap();
    let breaker = registry().replace("macro_async.cancel", config);
    breaker.record_failure();
    clock.advance(Duration::from_secs(10));

    futures::executor::block_on(async {
        let mut trial = Box::pin(hangs(true));
        assert!(poll_once(trial.as_mut()).is_pending());
        assert_eq!(breaker.state(), State::HalfOpen);
        assert_eq!(
            hangs(false).await,
            Err(FetchError::Unavailable),
            "the only trial slot is taken"
        );

        drop(trial); // cancelled: the slot is released, nothing recorded
        assert_eq!(breaker.metrics().failed_calls, 1);
        assert_eq!(hangs(false).await, Ok(()), "the next trial is admitted");
        assert_eq!(breaker.state(), State::Closed);
    });
}

#[circuit_breaker(name = "macro_async.sibling", failure_threshold = 1)]
async fn waits_for_ever() -> Result<(), FetchError> {
    std::future::pending::<()>().await;
    Ok(())
}

/// Pending calls of a task that unwinds for a reason of its own (a sibling
/// branch of `join!` panics) are cancelled, not failed: a healthy
/// dependency must not trip because of someone else's bug.
#[test]
fn pending_calls_dropped_by_a_sibling_panic_do_not_trip_the_breaker() {
    let unwound = std::panic::catch_unwind(|| {
        futures::executor::block_on(async {
            let calls = futures::future::join_all((0..10).map(|_| waits_for_ever()));
            let sibling = async {
                tokio::task::yield_now().await;
                panic!("a bug elsewhere in the task");
            };
            futures::join!(calls, sibling)
        })
    });
    assert!(unwound.is_err());
    let breaker = registry().get("macro_async.sibling").unwrap();
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(breaker.metrics().failed_calls, 0);
}

fn never_classifies(_: &FetchError) -> bool {
    panic!("the classifier blew up")
}

#[circuit_breaker(
    name = "macro_async.classifier",
    failure_threshold = 1,
    is_failure = never_classifies
)]
async fn classified() -> Result<(), FetchError> {
    Err(FetchError::Down)
}

#[test]
fn a_panicking_is_failure_counts_the_error_as_a_failure() {
    let unwound = std::panic::catch_unwind(|| futures::executor::block_on(classified()));
    assert!(unwound.is_err());
    let breaker = registry().get("macro_async.classifier").unwrap();
    assert_eq!(breaker.metrics().failed_calls, 1);
    assert_eq!(breaker.state(), State::Open);
}

#[circuit_breaker(name = "macro_async.fallback_panics", failure_threshold = 1, fallback = panicking_fallback)]
async fn with_panicking_fallback(fail: bool) -> Result<u32, FetchError> {
    if fail {
        Err(FetchError::Down)
    } else {
        Ok(1)
    }
}

#[allow(clippy::unused_async)]
async fn panicking_fallback(_fail: bool) -> Result<u32, FetchError> {
    panic!("the fallback blew up")
}

/// A fallback runs after the breaker has decided: its panic reaches the
/// caller and changes nothing in the breaker.
#[test]
fn a_panicking_async_fallback_leaves_the_breaker_as_it_was() {
    futures::executor::block_on(async {
        assert_eq!(with_panicking_fallback(true).await, Err(FetchError::Down));
    });
    let breaker = registry().get("macro_async.fallback_panics").unwrap();
    let before = breaker.metrics();
    let unwound =
        std::panic::catch_unwind(|| futures::executor::block_on(with_panicking_fallback(false)));
    assert!(unwound.is_err(), "rejected into the panicking fallback");
    let after = breaker.metrics();
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(after.rejected_calls, before.rejected_calls + 1);
    assert_eq!(after.total_calls, before.total_calls);
}

/// A fallback that is a plain `fn` returning a future: an `impl Future`, a
/// boxed one.
#[allow(clippy::manual_async_fn)] // the shape under test
fn fallback_impl_future(id: u32) -> impl std::future::Future<Output = Result<u32, FetchError>> {
    async move { Ok(id + 1000) }
}

type BoxedAnswer =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<u32, FetchError>> + Send>>;

fn fallback_boxed(id: u32) -> BoxedAnswer {
    Box::pin(async move { Ok(id + 2000) })
}

#[circuit_breaker(name = "macro_async.fallback_impl_future", fallback = fallback_impl_future)]
async fn through_impl_future(id: u32) -> Result<u32, FetchError> {
    Ok(id)
}

#[circuit_breaker(name = "macro_async.fallback_boxed", fallback = fallback_boxed)]
async fn through_boxed(id: u32) -> Result<u32, FetchError> {
    Ok(id)
}

#[test]
fn a_fallback_may_be_any_fn_that_returns_a_future() {
    futures::executor::block_on(async {
        assert_eq!(through_impl_future(1).await, Ok(1));
        assert_eq!(through_boxed(2).await, Ok(2));
        for name in [
            "macro_async.fallback_impl_future",
            "macro_async.fallback_boxed",
        ] {
            registry().get(name).unwrap().force_open();
        }
        assert_eq!(through_impl_future(1).await, Ok(1001));
        assert_eq!(through_boxed(2).await, Ok(2002));
    });
}
