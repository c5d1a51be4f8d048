//! Property test: random programs of operations run against the real breaker
//! and against `Model` (tests/common/model.rs), a deliberately plain
//! single-threaded restatement of the rules in the README. After every step
//! the state, each admission or rejection (its state and `retry_after`) and
//! every metric must agree.
//!
//! Programs mix whole calls (ending in success, failure, an ignored error, a
//! panic, or a panicking classifier), raw permits held across steps, async
//! calls held pending across steps and then completed, cancelled (also by
//! another panic's unwinding) or made to panic in their own poll, commands,
//! and clock moves from nanoseconds to the end of time.

mod common;

use std::time::Duration;

use circuit_runtime::{CircuitBreaker, ManualClock};
use proptest::prelude::*;

use common::model::{Model, Options, Window};
use common::ops::{op, options, Op};
use common::runner::{check_against_model, silence_injected_panics};

fn run(options: &Options, program: &[Op]) -> Result<(), TestCaseError> {
    let clock = ManualClock::new();
    let origin = clock.now();
    let breaker = CircuitBreaker::new("model", options.config(&clock));
    let mut model = Model::new(options.clone());
    check_against_model(&breaker, &clock, origin, &mut model, program)
}

proptest! {
    #![proptest_config(common::proptest_config(512))]

    #[test]
    fn breaker_agrees_with_the_model(
        options in options(),
        program in proptest::collection::vec(op(), 1..80),
    ) {
        silence_injected_panics();
        run(&options, &program)?;
    }
}

/// At the end of time a time window of one-nanosecond buckets still covers
/// the ten most recent bucket stamps. Stamps saturate, so nanoseconds
/// `u64::MAX - 1` and `u64::MAX` share the last one, and nanosecond
/// `u64::MAX - 10` is still among the ten most recent when the clock reads
/// `u64::MAX`: a success then and a failure at the end make a failure rate
/// of 0.5, short of the 1.0 that trips. The random programs reach this
/// instant too rarely to find it. (The ring of buckets was indexed by
/// bucket number, numbers `u64::MAX - 10` and `u64::MAX` shared a slot, and
/// the failure recycled the success's bucket: the rate read 1.0.)
#[test]
fn a_time_window_at_the_end_of_time_still_covers_ten_stamps() {
    let options = Options {
        failure_threshold: 100,
        success_threshold: 1,
        half_open_max_calls: 1,
        recovery_timeout: Duration::from_secs(1),
        failure_rate_threshold: Some(1.0),
        window: Window::Span(Duration::from_nanos(5)),
        minimum_calls: 1,
        slow_call_duration: None,
        slow_call_rate_threshold: None,
        recovery_backoff: 1.0,
        max_recovery_timeout: Duration::from_secs(1),
        half_open_timeout: Duration::from_secs(1),
    };
    let program = [
        // The breaker's time is the clock's nanoseconds plus one.
        Op::Advance(Duration::from_nanos(u64::MAX - 11)),
        Op::RecordSuccess,
        Op::Advance(Duration::from_nanos(10)),
        Op::RecordFailure,
    ];
    run(&options, &program).unwrap();
}
