//! A panic inside the protected call's own body is a failure and keeps
//! unwinding; a cancelled async call gives back its slot and counts as
//! nothing, even when someone else's panic is what cancels it. Async calls run under `futures::executor` and tokio, and by hand
//! with a no-op waker where a test needs to stop between polls.

mod common;

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use circuit_runtime::{CallError, CircuitBreaker, Config, ConfigBuilder, ManualClock, State};
use futures::executor::block_on;

#[path = "common/poll.rs"]
mod poll;
use poll::poll_once;

fn breaker(builder: ConfigBuilder) -> (CircuitBreaker, ManualClock) {
    common::manual_breaker("fragile", builder)
}

/// A breaker whose recovery timeout has elapsed: its next call is a trial.
/// Its only trial slot is the one the tests watch.
fn half_open() -> CircuitBreaker {
    let (breaker, clock) = breaker(
        Config::builder()
            .failure_threshold(1)
            .recovery_timeout(Duration::from_secs(10)),
    );
    breaker.record_failure();
    clock.advance(Duration::from_secs(10));
    breaker
}

/// A call that is still running: a future that is never ready.
fn never_ready() -> std::future::Pending<Result<(), &'static str>> {
    std::future::pending()
}

/// A future that is pending once, then panics when polled again.
struct PanicsOnSecondPoll {
    polled: bool,
}

impl Future for PanicsOnSecondPoll {
    type Output = Result<(), &'static str>;

    fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Self::Output> {
        assert!(!self.polled, "the protected future blew up");
        self.polled = true;
        Poll::Pending
    }
}

/// Pending once, waking itself: lets the other branches of a `join!` run
/// first.
async fn yield_now() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await;
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("<non-string panic>")
}

// --- Sync panics ---------------------------------------------------------------

#[test]
fn a_panic_inside_call_counts_as_a_failure_and_keeps_unwinding() {
    let (breaker, _clock) = breaker(Config::builder().failure_threshold(2));
    let unwound = catch_unwind(AssertUnwindSafe(|| {
        breaker.call(|| -> Result<(), ()> { panic!("the dependency blew up") })
    }));
    let payload = unwound.expect_err("the panic reaches the caller");
    assert_eq!(panic_message(&*payload), "the dependency blew up");
    let metrics = breaker.metrics();
    assert_eq!((metrics.failed_calls, metrics.total_calls), (1, 1));
    assert_eq!(metrics.consecutive_failures, 1);

    let _ = catch_unwind(AssertUnwindSafe(|| {
        breaker.call(|| -> Result<(), ()> { panic!("again") })
    }));
    assert_eq!(breaker.state(), State::Open, "two panics trip the breaker");
}

#[test]
fn a_panic_counts_as_a_failure_whatever_the_classifier_says() {
    let (breaker, _clock) = breaker(Config::builder().failure_threshold(1));
    let unwound = catch_unwind(AssertUnwindSafe(|| {
        breaker.call_with(
            |(): &()| false,
            || -> Result<(), ()> { panic!("no error value to classify") },
        )
    }));
    assert!(unwound.is_err());
    assert_eq!(breaker.metrics().failed_calls, 1);
    assert_eq!(breaker.metrics().ignored_calls, 0);
    assert_eq!(breaker.state(), State::Open);
}

#[test]
fn a_panicking_trial_reopens_the_breaker() {
    let breaker = half_open();
    let unwound = catch_unwind(AssertUnwindSafe(|| {
        breaker.call(|| -> Result<(), ()> { panic!("the trial blew up") })
    }));
    assert!(unwound.is_err());
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(breaker.metrics().times_opened, 2);
}

// --- Async cancellation --------------------------------------------------------

#[test]
fn a_cancelled_async_trial_releases_its_slot_and_counts_nothing() {
    let breaker = half_open();
    let before = breaker.metrics();
    {
        let mut call = pin!(breaker.call_async(never_ready()));
        assert!(poll_once(call.as_mut()).is_pending());
        assert_eq!(breaker.state(), State::HalfOpen);
        let busy = breaker
            .try_acquire()
            .expect_err("the trial holds the only slot");
        assert_eq!(busy.state(), State::HalfOpen);
    } // dropped: cancelled

    let after = breaker.metrics();
    assert_eq!(after.total_calls, before.total_calls);
    assert_eq!(after.failed_calls, before.failed_calls);
    assert_eq!(
        breaker.state(),
        State::HalfOpen,
        "no verdict, no transition"
    );
    let trial = breaker.try_acquire().expect("the slot came back");
    trial.record_success();
    assert_eq!(breaker.state(), State::Closed);
}

#[test]
fn a_cancelled_async_call_on_a_closed_breaker_counts_nothing() {
    let (breaker, _clock) = breaker(Config::builder().failure_threshold(1));
    for _ in 0..10 {
        let mut call = Box::pin(breaker.call_async(never_ready()));
        assert!(poll_once(call.as_mut()).is_pending());
        drop(call);
    }
    let metrics = breaker.metrics();
    assert_eq!(metrics.total_calls, 0);
    assert_eq!(metrics.failed_calls, 0);
    assert_eq!(breaker.state(), State::Closed);
}

#[test]
fn an_async_call_never_polled_takes_no_slot() {
    let breaker = half_open();
    let call = breaker.call_async(never_ready());
    breaker.try_acquire().unwrap().record_success();
    assert_eq!(breaker.state(), State::Closed);
    drop(call);
    let metrics = breaker.metrics();
    assert_eq!(
        (metrics.failed_calls, metrics.successful_calls),
        (1, 1),
        "the trip and the trial; the unpolled call counts as nothing"
    );
    assert_eq!(breaker.state(), State::Closed);
}

#[test]
fn a_cancelled_async_call_with_a_pending_async_block_releases_its_slot() {
    let breaker = half_open();
    {
        let mut call = Box::pin(breaker.call_async_with(|_: &&str| true, async {
            std::future::pending::<()>().await;
            Err::<(), _>("unreachable")
        }));
        assert!(poll_once(call.as_mut()).is_pending());
        assert!(breaker.try_acquire().is_err());
    }
    assert!(breaker.try_acquire().is_ok());
    assert_eq!(breaker.metrics().failed_calls, 1, "only the trip's failure");
}

// --- Async panics --------------------------------------------------------------

#[test]
fn a_panicking_future_counts_as_a_failure_when_the_panic_escapes() {
    let breaker = half_open();
    let unwound = catch_unwind(AssertUnwindSafe(|| {
        block_on(breaker.call_async(async {
            panic!("the async dependency blew up");
            #[allow(unreachable_code)]
            Ok::<(), &str>(())
        }))
    }));
    let payload: Box<dyn std::any::Any + Send> = match unwound {
        Err(payload) => payload,
        Ok(result) => panic!("expected a panic, got {result:?}"),
    };
    assert_eq!(panic_message(&*payload), "the async dependency blew up");
    assert_eq!(breaker.state(), State::Open, "the trial failed");
    let metrics = breaker.metrics();
    assert_eq!(metrics.failed_calls, 2, "the trip and the panic, once");
    assert_eq!(metrics.times_opened, 2);
}

#[test]
fn a_panicking_future_counts_as_a_failure_when_the_executor_catches_it() {
    // What tokio does with a panicking task: the poll unwinds into the
    // executor's catch_unwind, and the future is dropped afterwards, once
    // the thread is no longer panicking.
    let breaker = half_open();
    let mut call = Box::pin(breaker.call_async(PanicsOnSecondPoll { polled: false }));
    assert!(poll_once(call.as_mut()).is_pending());
    let unwound = catch_unwind(AssertUnwindSafe(|| poll_once(call.as_mut())));
    assert!(unwound.is_err());
    assert!(!std::thread::panicking());
    drop(call);

    assert_eq!(
        breaker.state(),
        State::Open,
        "the panicking trial reopened it"
    );
    let metrics = breaker.metrics();
    assert_eq!(metrics.failed_calls, 2, "the trip and the panic, once");
    assert_eq!(metrics.total_calls, 2);
}

#[test]
fn a_panicking_future_on_a_closed_breaker_is_one_failure() {
    let (breaker, _clock) = breaker(Config::builder().failure_threshold(2));
    let mut call = Box::pin(breaker.call_async(PanicsOnSecondPoll { polled: false }));
    assert!(poll_once(call.as_mut()).is_pending());
    assert!(catch_unwind(AssertUnwindSafe(|| poll_once(call.as_mut()))).is_err());
    drop(call);
    let metrics = breaker.metrics();
    assert_eq!(metrics.failed_calls, 1);
    assert_eq!(metrics.consecutive_failures, 1);
    assert_eq!(breaker.state(), State::Closed);
}

// --- Someone else's panic ------------------------------------------------------

/// A task holding ten pending calls unwinds for a reason of its own (here a
/// sibling branch of `join!`): the calls are cancelled, not failed, so a
/// healthy dependency does not trip.
#[test]
fn pending_calls_dropped_by_a_sibling_panic_are_cancelled_not_failed() {
    let (breaker, _clock) = breaker(Config::builder().failure_threshold(5));
    let unwound = catch_unwind(AssertUnwindSafe(|| {
        block_on(async {
            let calls =
                futures::future::join_all((0..10).map(|_| breaker.call_async(never_ready())));
            let sibling = async {
                // Let the calls start first: they hold their permits.
                yield_now().await;
                panic!("a bug elsewhere in the task");
            };
            futures::join!(calls, sibling)
        })
    }));
    assert!(unwound.is_err());
    let metrics = breaker.metrics();
    assert_eq!(breaker.state(), State::Closed, "nothing failed");
    assert_eq!((metrics.failed_calls, metrics.total_calls), (0, 0));
}

#[test]
fn a_pending_trial_dropped_by_a_sibling_panic_gives_its_slot_back() {
    let breaker = half_open();
    let unwound = catch_unwind(AssertUnwindSafe(|| {
        block_on(async {
            let trial = breaker.call_async(never_ready());
            let sibling = async {
                yield_now().await;
                panic!("a bug elsewhere in the task");
            };
            futures::join!(trial, sibling)
        })
    }));
    assert!(unwound.is_err());
    assert_eq!(breaker.state(), State::HalfOpen, "the trial did not fail");
    assert_eq!(breaker.metrics().times_opened, 1);
    block_on(breaker.call_async(async { Ok::<_, &str>(()) })).expect("the slot is free again");
    assert_eq!(breaker.state(), State::Closed);
}

/// The same, with the future held on the stack of a sync function that
/// unwinds: the drop happens while the thread is panicking, and still the
/// call's own poll never panicked.
#[test]
fn a_pending_call_dropped_while_the_thread_unwinds_is_cancelled() {
    let (breaker, _clock) = breaker(Config::builder().failure_threshold(1));
    let unwound = catch_unwind(AssertUnwindSafe(|| {
        let mut call = pin!(breaker.call_async(never_ready()));
        assert!(poll_once(call.as_mut()).is_pending());
        panic!("the caller blew up, not the call");
    }));
    assert!(unwound.is_err());
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(breaker.metrics().failed_calls, 0);
}

// --- Panics in the user's other code ---------------------------------------------

/// The call returned an error and the classifier blew up on it: the error
/// stands, counted as a failure (what every error is unless classified
/// otherwise), and the panic reaches the caller.
#[test]
fn a_panicking_classifier_counts_the_error_as_a_failure() {
    let (breaker, _clock) = breaker(Config::builder().failure_threshold(1));
    let unwound = catch_unwind(AssertUnwindSafe(|| {
        breaker.call_with(
            |_: &u16| panic!("the classifier blew up"),
            || Err::<(), u16>(503),
        )
    }));
    assert!(unwound.is_err());
    let metrics = breaker.metrics();
    assert_eq!((metrics.failed_calls, metrics.total_calls), (1, 1));
    assert_eq!(breaker.state(), State::Open);
}

#[test]
fn a_panicking_async_classifier_counts_the_error_as_a_failure() {
    let breaker = half_open();
    let unwound = catch_unwind(AssertUnwindSafe(|| {
        block_on(
            breaker.call_async_with(|_: &u16| panic!("the classifier blew up"), async {
                Err::<(), u16>(503)
            }),
        )
    }));
    assert!(unwound.is_err());
    assert_eq!(breaker.state(), State::Open, "the trial failed");
    assert_eq!(breaker.metrics().failed_calls, 2, "the trip and the trial");
}

#[test]
fn a_classifier_is_not_asked_about_successes() {
    let (breaker, _clock) = breaker(Config::builder());
    let result = breaker.call_with(|_: &u16| panic!("never asked"), || Ok::<_, u16>(1));
    assert_eq!(result.ok(), Some(1));
    assert_eq!(breaker.metrics().successful_calls, 1);
}

// --- Executors -----------------------------------------------------------------

#[test]
fn call_async_under_futures_block_on() {
    let (breaker, _clock) = breaker(Config::builder().failure_threshold(2));
    assert_eq!(
        block_on(breaker.call_async(async { Ok::<_, &str>(7) })),
        Ok(7)
    );
    assert_eq!(
        block_on(breaker.call_async(async { Err::<(), _>("down") })),
        Err(CallError::Failed("down"))
    );
    assert_eq!(
        block_on(breaker.call_async_with(|_: &&str| false, async { Err::<(), _>("not found") })),
        Err(CallError::Failed("not found"))
    );
    let metrics = breaker.metrics();
    assert_eq!(
        (
            metrics.successful_calls,
            metrics.failed_calls,
            metrics.ignored_calls
        ),
        (1, 1, 1)
    );
    let _ = block_on(breaker.call_async(async { Err::<(), _>("down") }));
    let ran = AtomicBool::new(false);
    let rejected = block_on(breaker.call_async(async {
        ran.store(true, Ordering::SeqCst);
        Ok::<_, &str>(())
    }));
    assert!(matches!(rejected, Err(CallError::Rejected(_))));
    assert!(
        !ran.load(Ordering::SeqCst),
        "a rejected future is never polled"
    );
}

#[tokio::test]
async fn call_async_under_tokio_current_thread() {
    let (breaker, _clock) = breaker(Config::builder().failure_threshold(1));
    let value = breaker
        .call_async(async {
            tokio::task::yield_now().await;
            Ok::<_, &str>(42)
        })
        .await;
    assert_eq!(value, Ok(42));
    let failed = breaker
        .call_async(async {
            tokio::task::yield_now().await;
            Err::<(), _>("down")
        })
        .await;
    assert_eq!(failed, Err(CallError::Failed("down")));
    assert_eq!(breaker.state(), State::Open);
    assert!(breaker
        .call_async(async { Ok::<_, &str>(()) })
        .await
        .unwrap_err()
        .is_rejected());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn call_async_under_tokio_multi_thread() {
    let clock = ManualClock::new();
    let breaker = Arc::new(CircuitBreaker::new(
        "tokio-mt",
        Config::builder()
            .failure_threshold(u32::MAX)
            .clock(clock)
            .build()
            .unwrap(),
    ));
    let tasks: Vec<_> = (0..64_u32)
        .map(|i| {
            let breaker = Arc::clone(&breaker);
            tokio::spawn(async move {
                breaker
                    .call_async(async move {
                        tokio::task::yield_now().await;
                        if i % 4 == 0 {
                            Err(i)
                        } else {
                            Ok(i)
                        }
                    })
                    .await
            })
        })
        .collect();
    for task in tasks {
        let _ = task.await.unwrap();
    }
    let metrics = breaker.metrics();
    assert_eq!((metrics.successful_calls, metrics.failed_calls), (48, 16));
}

#[tokio::test]
async fn a_panicking_tokio_task_counts_as_a_failure() {
    let breaker = Arc::new(half_open());
    let task = {
        let breaker = Arc::clone(&breaker);
        tokio::spawn(async move {
            breaker
                .call_async(async {
                    tokio::task::yield_now().await;
                    panic!("the task blew up");
                    #[allow(unreachable_code)]
                    Ok::<(), &str>(())
                })
                .await
        })
    };
    let err = task.await.expect_err("tokio reports the panic");
    assert!(err.is_panic());
    assert_eq!(
        breaker.state(),
        State::Open,
        "the panicking trial reopened it"
    );
    assert_eq!(breaker.metrics().failed_calls, 2, "the trip and the panic");
}

#[tokio::test]
async fn an_aborted_tokio_task_releases_its_trial_slot() {
    let breaker = Arc::new(half_open());
    let started = Arc::new(AtomicBool::new(false));
    let task = {
        let (breaker, started) = (Arc::clone(&breaker), Arc::clone(&started));
        tokio::spawn(async move {
            breaker
                .call_async(async {
                    started.store(true, Ordering::SeqCst);
                    std::future::pending::<Result<(), &str>>().await
                })
                .await
        })
    };
    while !started.load(Ordering::SeqCst) {
        tokio::task::yield_now().await;
    }
    assert!(breaker.try_acquire().is_err(), "the task holds the slot");
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());

    assert_eq!(breaker.state(), State::HalfOpen);
    assert_eq!(breaker.metrics().failed_calls, 1, "only the trip's failure");
    assert_eq!(breaker.metrics().total_calls, 1);
    breaker
        .try_acquire()
        .expect("the slot came back")
        .record_success();
    assert_eq!(breaker.state(), State::Closed);
}

#[tokio::test]
async fn a_call_losing_a_tokio_select_is_cancelled() {
    let breaker = half_open();
    tokio::select! {
        biased;
        _ = breaker.call_async(never_ready()) => unreachable!("never ready"),
        () = tokio::task::yield_now() => {}
    }
    assert_eq!(breaker.state(), State::HalfOpen);
    breaker
        .try_acquire()
        .expect("the slot came back")
        .record_success();
    assert_eq!(breaker.state(), State::Closed);
}
