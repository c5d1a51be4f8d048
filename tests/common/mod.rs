//! What the integration tests share: a breaker on a manual clock, and for
//! the model tests the reference model, the operations programs are made
//! of, and the runner that applies them to a real breaker.
//!
//! Each test binary that says `mod common;` compiles its own copy, and
//! none uses every item: hence the `dead_code` allowance.
#![allow(dead_code)]

use std::sync::mpsc;
use std::time::Duration;

use circuit_runtime::{CircuitBreaker, ConfigBuilder, ManualClock};

pub mod model;
pub mod ops;
pub mod runner;

/// `cases` cases, with failures kept beside the test file (as
/// `<test>.regressions`) so they are replayed first on every run.
pub fn proptest_config(cases: u32) -> proptest::test_runner::Config {
    proptest::test_runner::Config {
        cases,
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("regressions"),
        )),
        ..proptest::test_runner::Config::default()
    }
}

/// A breaker named `name`, configured by `builder`, on a manual clock of
/// its own, returned with the clock so the test can move time.
pub fn manual_breaker(name: &str, builder: ConfigBuilder) -> (CircuitBreaker, ManualClock) {
    let clock = ManualClock::new();
    let config = builder.clock(clock.clone()).build().expect("valid config");
    (CircuitBreaker::new(name, config), clock)
}

/// Runs `f` on a thread of its own and returns what it returns, or fails
/// the test with "`what` never returned" once `within` has passed: code
/// that loops or deadlocks must fail a test with a sentence, not hang CI.
/// A panic in `f` is re-raised here.
pub fn returns_within<T: Send + 'static>(
    what: &str,
    within: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (done, finished) = mpsc::channel();
    let worker = std::thread::spawn(move || {
        let _ = done.send(f());
    });
    match finished.recv_timeout(within) {
        Ok(value) => {
            worker.join().expect("the worker finished");
            value
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            std::panic::resume_unwind(worker.join().expect_err("the worker panicked"))
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{what} never returned"),
    }
}
