//! The operations a program is made of, and the strategies that generate
//! options and programs.

use std::ops::RangeInclusive;
use std::time::Duration;

use proptest::prelude::*;

use super::model::{Options, Verdict, Window};

/// How a call's own body ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    Success,
    Failure,
    /// An error the classifier calls no failure (`call` and `call_async`
    /// have none: every error is a failure there).
    Ignored,
    /// The body panics.
    Panic,
    /// The body returns an error on which the classifier panics.
    ClassifierPanic,
}

impl Ending {
    /// What the breaker records for a call that ends like this, with the
    /// test's classifier (`classified`) or without one.
    pub fn verdict(self, classified: bool) -> Verdict {
        match self {
            Ending::Success => Verdict::Success,
            Ending::Ignored if classified => Verdict::Ignored,
            Ending::Failure | Ending::Ignored | Ending::Panic | Ending::ClassifierPanic => {
                Verdict::Failure
            }
        }
    }

    /// Whether a panic reaches the caller.
    pub fn panics(self, classified: bool) -> bool {
        self == Ending::Panic || (classified && self == Ending::ClassifierPanic)
    }
}

/// How a held permit is ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PermitEnd {
    Success,
    Failure,
    Ignored,
    /// Dropped without a verdict.
    Cancel,
    /// Dropped by a panic's unwinding: the breaker cannot tell whose panic
    /// it was, so this is a cancellation too.
    DropInPanic,
}

impl PermitEnd {
    pub fn verdict(self) -> Verdict {
        match self {
            PermitEnd::Success => Verdict::Success,
            PermitEnd::Failure => Verdict::Failure,
            PermitEnd::Ignored => Verdict::Ignored,
            PermitEnd::Cancel | PermitEnd::DropInPanic => Verdict::Cancelled,
        }
    }
}

/// How a held (pending) async call is ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AsyncEnd {
    /// Its future is polled again and ends like this. With `Ending::Panic`
    /// the poll panics and the future is dropped after `catch_unwind`
    /// returns, as an executor that catches panics does.
    Complete(Ending),
    /// Its poll panics and the panic's own unwinding drops the future.
    PanicDroppedByUnwinding,
    /// Dropped between polls.
    Cancel,
    /// Dropped between polls by someone else's panic unwinding.
    CancelInPanic,
}

impl AsyncEnd {
    pub fn verdict(self, classified: bool) -> Verdict {
        match self {
            AsyncEnd::Complete(ending) => ending.verdict(classified),
            AsyncEnd::PanicDroppedByUnwinding => Verdict::Failure,
            AsyncEnd::Cancel | AsyncEnd::CancelInPanic => Verdict::Cancelled,
        }
    }
}

#[derive(Clone, Debug)]
pub enum Op {
    /// A whole `call` (`call_with` when `classified`) whose body takes
    /// `takes` on the clock and ends like `ending`.
    Call {
        ending: Ending,
        takes: Duration,
        classified: bool,
    },
    /// Acquire a permit and hold it.
    Acquire,
    /// End a held permit (chosen by index).
    Settle {
        index: usize,
        end: PermitEnd,
    },
    /// Start a `call_async` (`call_async_with` when `classified`) and poll
    /// it once: its future is pending, holding its permit.
    StartAsync {
        classified: bool,
    },
    /// End a held async call (chosen by index).
    FinishAsync {
        index: usize,
        end: AsyncEnd,
    },
    Advance(Duration),
    RecordSuccess,
    RecordFailure,
    Reset,
    ForceOpen,
    Disable,
}

/// Multiples of 100ms.
fn tenths(range: RangeInclusive<u64>) -> impl Strategy<Value = Duration> {
    range.prop_map(|tenths| Duration::from_millis(tenths * 100))
}

fn nanos(range: RangeInclusive<u64>) -> impl Strategy<Value = Duration> {
    range.prop_map(Duration::from_nanos)
}

/// Durations at or near the end of time: added to any clock they saturate
/// it, or leave it a few nanoseconds short of saturating.
fn huge() -> impl Strategy<Value = Duration> {
    prop_oneof![
        Just(Duration::MAX),
        (0u64..=25).prop_map(|short| Duration::from_nanos(u64::MAX - short)),
        Just(Duration::from_nanos(u64::MAX / 2)),
        Just(Duration::from_secs(u64::MAX / 1_000_000_000)),
    ]
}

/// A positive duration for a timeout option: mostly tenths of a second,
/// sometimes a few nanoseconds (shorter than any step of the clock), rarely
/// at the end of time.
fn timeout(range: RangeInclusive<u64>) -> impl Strategy<Value = Duration> {
    prop_oneof![
        8 => tenths(range),
        2 => nanos(1..=20),
        1 => huge(),
    ]
}

fn rate() -> impl Strategy<Value = f64> {
    prop_oneof![Just(0.25), Just(0.5), Just(0.6), Just(1.0)]
}

prop_compose! {
    pub fn options()(
        failure_threshold in 1u32..=5,
        success_threshold in 1u32..=3,
        half_open_max_calls in 1u32..=3,
        recovery_timeout in timeout(1..=30),
        failure_rate_threshold in proptest::option::of(rate()),
        window in prop_oneof![
            (1u32..=8).prop_map(Window::Calls),
            timeout(1..=60).prop_map(Window::Span),
            // Shorter than ten nanoseconds: buckets of one nanosecond.
            nanos(1..=30).prop_map(Window::Span),
        ],
        minimum_fraction in 0.0f64..=1.0,
        slow in proptest::option::of((timeout(1..=10), proptest::option::of(rate()))),
        recovery_backoff in prop_oneof![Just(1.0), Just(1.5), Just(2.0)],
        max_factor in 1u32..=4,
        half_open_timeout in timeout(1..=50),
    ) -> Options {
        let window_cap = match window { Window::Calls(size) => size, Window::Span(_) => 8 };
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
        let minimum_calls = ((f64::from(window_cap) * minimum_fraction).ceil() as u32).clamp(1, window_cap);
        Options {
            failure_threshold,
            success_threshold,
            half_open_max_calls,
            recovery_timeout,
            failure_rate_threshold,
            window,
            minimum_calls,
            slow_call_duration: slow.map(|(duration, _)| duration),
            slow_call_rate_threshold: slow.and_then(|(_, rate)| rate),
            recovery_backoff,
            max_recovery_timeout: recovery_timeout.saturating_mul(max_factor),
            half_open_timeout,
        }
    }
}

fn ending() -> impl Strategy<Value = Ending> {
    prop_oneof![
        4 => Just(Ending::Success),
        4 => Just(Ending::Failure),
        1 => Just(Ending::Ignored),
        1 => Just(Ending::Panic),
        1 => Just(Ending::ClassifierPanic),
    ]
}

fn permit_end() -> impl Strategy<Value = PermitEnd> {
    prop_oneof![
        4 => Just(PermitEnd::Success),
        4 => Just(PermitEnd::Failure),
        1 => Just(PermitEnd::Ignored),
        1 => Just(PermitEnd::Cancel),
        1 => Just(PermitEnd::DropInPanic),
    ]
}

fn async_end() -> impl Strategy<Value = AsyncEnd> {
    prop_oneof![
        6 => ending().prop_map(AsyncEnd::Complete),
        1 => Just(AsyncEnd::PanicDroppedByUnwinding),
        1 => Just(AsyncEnd::Cancel),
        1 => Just(AsyncEnd::CancelInPanic),
    ]
}

/// How far one `Advance` moves the clock: mostly tenths of a second,
/// sometimes nanoseconds, rarely to (or nearly to) the end of time.
fn advance() -> impl Strategy<Value = Duration> {
    prop_oneof![
        30 => tenths(0..=40),
        8 => nanos(0..=25),
        1 => huge(),
    ]
}

/// The operations of the sequential test.
pub fn op() -> impl Strategy<Value = Op> {
    op_mix(3)
}

/// Operations where `hold` weighs permits and async calls held across
/// steps against the rest (a whole call weighs 12).
pub fn op_mix(hold: u32) -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => (ending(), prop_oneof![4 => tenths(0..=12), 1 => nanos(0..=20)], any::<bool>())
            .prop_map(|(ending, takes, classified)| Op::Call { ending, takes, classified }),
        hold => Just(Op::Acquire),
        hold => (any::<usize>(), permit_end()).prop_map(|(index, end)| Op::Settle { index, end }),
        hold - 1 => any::<bool>().prop_map(|classified| Op::StartAsync { classified }),
        hold - 1 => (any::<usize>(), async_end()).prop_map(|(index, end)| Op::FinishAsync { index, end }),
        5 => advance().prop_map(Op::Advance),
        1 => Just(Op::RecordSuccess),
        1 => Just(Op::RecordFailure),
        1 => Just(Op::Reset),
        1 => Just(Op::ForceOpen),
        1 => Just(Op::Disable),
    ]
}
