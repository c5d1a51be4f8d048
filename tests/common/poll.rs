//! Polling a future by hand, as an executor would, to stop between polls
//! and cancel a call mid-flight. Included by `#[path]`, not through
//! `common`, so test binaries that use it build nothing else.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Polls `future` once with a waker that does nothing.
pub fn poll_once<F: Future>(future: Pin<&mut F>) -> Poll<F::Output> {
    future.poll(&mut Context::from_waker(futures::task::noop_waker_ref()))
}
