//! Waiting without a runtime of our own: the [`Sleeper`] a caller lends an
//! async call, and the lazily started time limit that a breaker's
//! `timeout` and a retry's `attempt_timeout` share.

use std::future::Future;
use std::time::Duration;

/// How an async call waits: between a retry's attempts, and for a time
/// limit (a breaker's `timeout`, a retry's `attempt_timeout`). Any
/// `Fn(Duration) -> impl Future<Output = ()>` is one, so every executor
/// works (`tokio::time::sleep`, `async_std::task::sleep`, a test's manual
/// clock). With feature `tokio`, [`TokioSleeper`](crate::retry::TokioSleeper) is
/// one too.
///
/// ```
/// use std::time::Duration;
/// use circuit_runtime::retry::Sleeper;
/// fn check(_: impl Sleeper) {}
/// check(|delay: Duration| async move { let _ = delay; /* your runtime's sleep */ });
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot sleep between retries",
    label = "a sleeper is a `Fn(Duration) -> impl Future<Output = ()>`",
    note = "pass your runtime's sleep: `|delay| tokio::time::sleep(delay)`, or `circuit_runtime::retry::TokioSleeper` with feature `tokio`"
)]
pub trait Sleeper {
    /// The future that completes after the delay.
    type Sleep: Future<Output = ()>;

    /// Waits `delay`.
    fn sleep(&self, delay: Duration) -> Self::Sleep;
}

impl<F, S> Sleeper for F
where
    F: Fn(Duration) -> S,
    S: Future<Output = ()>,
{
    type Sleep = S;

    fn sleep(&self, delay: Duration) -> S {
        self(delay)
    }
}

pin_project_lite::pin_project! {
    /// A time limit that starts when the call it limits first has to
    /// wait, not when the call is made: a call that completes at once
    /// never asks the sleeper for a timer (a test's sleeper that moves a
    /// manual clock when asked would otherwise count a whole limit against
    /// `max_elapsed` for an instant attempt). Shared by a breaker's
    /// `timeout` and a retry's `attempt_timeout`.
    pub(crate) struct Deadline<S: Sleeper> {
        #[pin]
        sleep: Option<S::Sleep>,
    }
}

impl<S: Sleeper> Deadline<S> {
    pub(crate) fn new() -> Self {
        Deadline { sleep: None }
    }

    /// Whether the limit has started.
    pub(crate) fn is_started(&self) -> bool {
        self.sleep.is_some()
    }

    /// Starts the limit of `limit` on `sleeper` if it has not started,
    /// and polls it: ready once the limit is over.
    pub(crate) fn poll_started(
        self: std::pin::Pin<&mut Self>,
        sleeper: &S,
        limit: Duration,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        let mut sleep = self.project().sleep;
        if sleep.is_none() {
            sleep.set(Some(sleeper.sleep(limit)));
        }
        sleep
            .as_pin_mut()
            .expect("the limit, started above")
            .poll(cx)
    }
}
