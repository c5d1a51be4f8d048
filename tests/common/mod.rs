//! What the model tests share: the reference model, the operations programs
//! are made of, and the runner that applies them to a real breaker.
//!
//! Each test binary that says `mod common;` compiles its own copy, and
//! neither uses every item: hence the `dead_code` allowance.
#![allow(dead_code)]

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
