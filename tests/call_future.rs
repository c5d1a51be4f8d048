//! The future `call_async` returns: when it asks the breaker, what it does
//! when misused, and what it shows.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::pin;
use std::task::Poll;

use circuit_runtime::{CallError, CircuitBreaker, Config, State};

#[path = "common/poll.rs"]
mod poll;
use poll::poll_once;

#[test]
fn it_asks_the_breaker_when_first_polled_not_when_made() {
    let breaker = CircuitBreaker::new("call_future.first_poll", Config::default());
    let call = breaker.call_async(async { Ok::<_, ()>(1) });
    breaker.force_open();
    let result = futures::executor::block_on(call);
    assert!(
        matches!(&result, Err(CallError::Rejected(rejection)) if rejection.state() == State::ForcedOpen),
        "{result:?}"
    );
    assert_eq!(breaker.metrics().rejected_calls, 1);
}

#[test]
fn a_future_made_while_open_runs_if_the_breaker_closes_before_its_first_poll() {
    let breaker = CircuitBreaker::new("call_future.reopened", Config::default());
    breaker.force_open();
    let call = breaker.call_async(async { Ok::<_, ()>(2) });
    breaker.reset();
    assert_eq!(futures::executor::block_on(call), Ok(2));
    assert_eq!(breaker.metrics().successful_calls, 1);
}

#[test]
fn polled_again_after_completing_it_panics_and_records_nothing_more() {
    let breaker = CircuitBreaker::new("call_future.after_completion", Config::default());
    let mut call = pin!(breaker.call_async(async { Ok::<_, ()>(3) }));
    assert_eq!(poll_once(call.as_mut()), Poll::Ready(Ok(3)));
    let again = catch_unwind(AssertUnwindSafe(|| poll_once(call.as_mut())));
    let message = again.expect_err("a second poll after completion panics");
    let message = message
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| message.downcast_ref::<String>().map(String::as_str))
        .unwrap_or_default();
    assert!(message.contains("polled after it completed"), "{message}");
    let metrics = breaker.metrics();
    assert_eq!((metrics.successful_calls, metrics.failed_calls), (1, 0));
}

#[test]
fn polled_again_after_a_rejection_it_panics_and_counts_one_rejection() {
    let breaker = CircuitBreaker::new("call_future.after_rejection", Config::default());
    breaker.force_open();
    let mut call = pin!(breaker.call_async(async { Ok::<_, ()>(4) }));
    assert!(matches!(
        poll_once(call.as_mut()),
        Poll::Ready(Err(CallError::Rejected(_)))
    ));
    assert!(catch_unwind(AssertUnwindSafe(|| poll_once(call.as_mut()))).is_err());
    assert_eq!(breaker.metrics().rejected_calls, 1);
}

#[test]
fn debug_tells_whether_the_call_was_admitted() {
    let breaker = CircuitBreaker::new("call_future.debug", Config::default());
    let mut call = pin!(breaker.call_async(std::future::pending::<Result<(), ()>>()));
    assert_eq!(format!("{call:?}"), "CallFuture { admitted: false, .. }");
    assert_eq!(poll_once(call.as_mut()), Poll::Pending);
    assert_eq!(format!("{call:?}"), "CallFuture { admitted: true, .. }");
}
