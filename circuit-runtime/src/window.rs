//! The sliding window that failure-rate and slow-call-rate rules judge:
//! either the last N outcomes or the outcomes of the last stretch of time.
//! Both are lock-free; recording an outcome is a few relaxed atomic ops.

use std::time::Duration;

use crate::clock::saturating_nanos;
use crate::config::WindowKind;
use crate::sync::{AtomicU64, Ordering};

/// One call's verdict as the window sees it. Ignored calls never get here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Outcome {
    pub(crate) failed: bool,
    pub(crate) slow: bool,
}

/// What the window holds right now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    pub(crate) calls: u64,
    pub(crate) failures: u64,
    pub(crate) slow: u64,
}

impl Tally {
    pub(crate) fn failure_rate(self) -> Option<f64> {
        ratio(self.failures, self.calls)
    }

    pub(crate) fn slow_call_rate(self) -> Option<f64> {
        ratio(self.slow, self.calls)
    }
}

#[allow(clippy::cast_precision_loss)] // counts far below 2^52
fn ratio(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

#[derive(Debug)]
pub(crate) enum Window {
    Calls(CountWindow),
    Time(Box<TimeWindow>),
}

impl Window {
    pub(crate) fn new(kind: WindowKind) -> Self {
        match kind {
            WindowKind::Calls(size) => Window::Calls(CountWindow::new(size)),
            WindowKind::Duration(span) => Window::Time(Box::new(TimeWindow::new(span))),
        }
    }

    /// Adds one outcome and returns the tally including it. `now` is only
    /// read by time windows; count windows are handed 0 and never look.
    #[inline]
    pub(crate) fn record(&self, outcome: Outcome, now: u64) -> Tally {
        match self {
            Window::Calls(window) => window.record(outcome),
            Window::Time(window) => window.record(outcome, now),
        }
    }

    pub(crate) fn tally(&self, now: u64) -> Tally {
        match self {
            Window::Calls(window) => window.tally(),
            Window::Time(window) => window.tally(now),
        }
    }

    pub(crate) fn clear(&self) {
        match self {
            Window::Calls(window) => window.clear(),
            Window::Time(window) => window.clear(),
        }
    }

    pub(crate) fn needs_time(&self) -> bool {
        matches!(self, Window::Time(_))
    }
}

const PRESENT: u64 = 1;
const FAILED: u64 = 2;
const SLOW: u64 = 4;

fn encode(outcome: Outcome) -> u64 {
    PRESENT | if outcome.failed { FAILED } else { 0 } | if outcome.slow { SLOW } else { 0 }
}

/// The last `size` outcomes in a ring of slots. Running totals of failures
/// and slow calls are adjusted by the difference between the outcome a
/// write replaces and the one it writes, so judging a rate never scans.
#[derive(Debug)]
pub(crate) struct CountWindow {
    slots: Box<[AtomicU64]>,
    /// Lemire's fast-modulo constant for `slots.len()`: a slot index costs a
    /// multiplication instead of a division on every call.
    modulo: FastModulo,
    /// Outcomes ever written; the next one goes to `written % size`.
    written: AtomicU64,
    /// `written` when the window was last cleared.
    cleared_at: AtomicU64,
    failures: AtomicU64,
    slow: AtomicU64,
}

impl CountWindow {
    fn new(size: u32) -> Self {
        Self {
            slots: (0..size).map(|_| AtomicU64::new(0)).collect(),
            modulo: FastModulo::new(size),
            written: AtomicU64::new(0),
            cleared_at: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            slow: AtomicU64::new(0),
        }
    }

    #[inline]
    fn record(&self, outcome: Outcome) -> Tally {
        let position = self.written.fetch_add(1, Ordering::Relaxed);
        let new = encode(outcome);
        let slot = &self.slots[self.modulo.reduce(position)];
        // Most calls replace a success with a success: nothing to write or
        // adjust. Skipping the swap when the slot already holds `new` is a
        // swap that changed nothing, so the totals stay exact; it saves the
        // hot path a locked instruction.
        if slot.load(Ordering::Relaxed) != new {
            let old = slot.swap(new, Ordering::Relaxed);
            if old != new {
                adjust(&self.failures, old & FAILED != 0, outcome.failed);
                adjust(&self.slow, old & SLOW != 0, outcome.slow);
            }
        }
        self.tally_at(position + 1)
    }

    fn tally(&self) -> Tally {
        self.tally_at(self.written.load(Ordering::Relaxed))
    }

    #[inline]
    fn tally_at(&self, written: u64) -> Tally {
        let calls = written
            .saturating_sub(self.cleared_at.load(Ordering::Relaxed))
            .min(self.slots.len() as u64);
        // Under a race a total can lag its slots by an update (even dip
        // below zero for an instant); clamping keeps a rate within [0, 1].
        let clamp = |total: &AtomicU64| clamp_count(total.load(Ordering::Relaxed), calls);
        Tally {
            calls,
            failures: clamp(&self.failures),
            slow: clamp(&self.slow),
        }
    }

    fn clear(&self) {
        for slot in &*self.slots {
            slot.store(0, Ordering::Relaxed);
        }
        self.failures.store(0, Ordering::Relaxed);
        self.slow.store(0, Ordering::Relaxed);
        self.cleared_at
            .store(self.written.load(Ordering::Relaxed), Ordering::Relaxed);
    }
}

/// Moves a running total by the change from `was` to `now`. Wrapping
/// arithmetic lets a racing decrement land before its increment.
#[inline]
fn adjust(total: &AtomicU64, was: bool, now: bool) {
    match (was, now) {
        (false, true) => {
            total.fetch_add(1, Ordering::Relaxed);
        }
        (true, false) => {
            total.fetch_sub(1, Ordering::Relaxed);
        }
        _ => {}
    }
}

/// Reads a total that may transiently have wrapped below zero.
fn clamp_count(raw: u64, calls: u64) -> u64 {
    if raw > u64::MAX / 2 {
        0
    } else {
        raw.min(calls)
    }
}

/// `x % d` for 32-bit operands without a division (Lemire, "Faster
/// Remainder by Direct Computation", 2019).
#[derive(Debug)]
struct FastModulo {
    divisor: u64,
    multiplier: u64,
}

impl FastModulo {
    fn new(divisor: u32) -> Self {
        Self {
            divisor: u64::from(divisor),
            multiplier: (u64::MAX / u64::from(divisor)).wrapping_add(1),
        }
    }

    /// The low 32 bits of `position` modulo the divisor. Dropping the high
    /// bits only matters once every 2^32 calls, when the ring skips ahead
    /// once: harmless for a statistical window.
    #[inline]
    #[allow(clippy::cast_possible_truncation)] // both truncations are the algorithm
    fn reduce(&self, position: u64) -> usize {
        let lowbits = self.multiplier.wrapping_mul(u64::from(position as u32));
        ((u128::from(lowbits) * u128::from(self.divisor)) >> 64) as usize
    }
}

const BUCKET_COUNT: usize = 10;
const BUCKETS: u64 = BUCKET_COUNT as u64;

/// The outcomes of the last `span`, in ten buckets of a tenth of the span
/// each: the window moves a bucket at a time, so it covers between 90% and
/// 100% of the span. A bucket is recycled by the first writer that finds it
/// stamped with an old bucket number.
#[derive(Debug)]
pub(crate) struct TimeWindow {
    bucket_nanos: u64,
    buckets: [Bucket; BUCKET_COUNT],
}

#[derive(Debug, Default)]
struct Bucket {
    /// The bucket number (time / `bucket_nanos`) plus one; zero when empty.
    stamp: AtomicU64,
    calls: AtomicU64,
    failures: AtomicU64,
    slow: AtomicU64,
}

impl TimeWindow {
    fn new(span: Duration) -> Self {
        Self {
            bucket_nanos: (saturating_nanos(span) / BUCKETS).max(1),
            buckets: Default::default(),
        }
    }

    fn record(&self, outcome: Outcome, now: u64) -> Tally {
        let number = now / self.bucket_nanos;
        let bucket = &self.buckets[usize::try_from(number % BUCKETS).unwrap_or(0)];
        let stamp = bucket.stamp.load(Ordering::Acquire);
        if stamp < number + 1
            && bucket
                .stamp
                .compare_exchange(stamp, number + 1, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            // This writer recycles the bucket. A concurrent writer that saw
            // the new stamp first may lose its count here: the window is a
            // statistic, and an exact one would need a lock per bucket.
            bucket.calls.store(0, Ordering::Relaxed);
            bucket.failures.store(0, Ordering::Relaxed);
            bucket.slow.store(0, Ordering::Relaxed);
        }
        bucket.calls.fetch_add(1, Ordering::Relaxed);
        if outcome.failed {
            bucket.failures.fetch_add(1, Ordering::Relaxed);
        }
        if outcome.slow {
            bucket.slow.fetch_add(1, Ordering::Relaxed);
        }
        self.tally(now)
    }

    fn tally(&self, now: u64) -> Tally {
        let current = now / self.bucket_nanos + 1;
        let oldest = current.saturating_sub(BUCKETS - 1);
        let mut tally = Tally::default();
        for bucket in &self.buckets {
            let stamp = bucket.stamp.load(Ordering::Acquire);
            if stamp >= oldest && stamp <= current && stamp != 0 {
                tally.calls += bucket.calls.load(Ordering::Relaxed);
                tally.failures += bucket.failures.load(Ordering::Relaxed);
                tally.slow += bucket.slow.load(Ordering::Relaxed);
            }
        }
        tally.failures = tally.failures.min(tally.calls);
        tally.slow = tally.slow.min(tally.calls);
        tally
    }

    fn clear(&self) {
        for bucket in &self.buckets {
            bucket.stamp.store(0, Ordering::Relaxed);
            bucket.calls.store(0, Ordering::Relaxed);
            bucket.failures.store(0, Ordering::Relaxed);
            bucket.slow.store(0, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: Outcome = Outcome {
        failed: false,
        slow: false,
    };
    const FAIL: Outcome = Outcome {
        failed: true,
        slow: false,
    };

    #[test]
    #[allow(clippy::cast_possible_truncation)] // the reduction works on the low 32 bits
    fn fast_modulo_matches_the_remainder() {
        for divisor in [1, 2, 3, 7, 10, 100, 1_000_000] {
            let modulo = FastModulo::new(divisor);
            for position in (0..5_000).chain([u64::from(u32::MAX) - 3, u64::from(u32::MAX)]) {
                let expected = (position as u32 % divisor) as usize;
                assert_eq!(modulo.reduce(position), expected, "{position} % {divisor}");
            }
        }
    }

    #[test]
    fn count_window_forgets_the_oldest_outcome() {
        let window = CountWindow::new(3);
        window.record(FAIL);
        window.record(FAIL);
        assert_eq!(
            window.record(OK),
            Tally {
                calls: 3,
                failures: 2,
                slow: 0
            }
        );
        assert_eq!(
            window.record(OK),
            Tally {
                calls: 3,
                failures: 1,
                slow: 0
            }
        );
        window.clear();
        assert_eq!(window.tally(), Tally::default());
        assert_eq!(
            window.record(FAIL),
            Tally {
                calls: 1,
                failures: 1,
                slow: 0
            }
        );
    }

    #[test]
    fn time_window_drops_buckets_older_than_the_span() {
        let window = TimeWindow::new(Duration::from_nanos(100));
        window.record(FAIL, 5);
        window.record(OK, 55);
        assert_eq!(
            window.tally(99),
            Tally {
                calls: 2,
                failures: 1,
                slow: 0
            }
        );
        // At 100 the bucket of 0..10 has left the window; 50..60 remains.
        assert_eq!(
            window.tally(100),
            Tally {
                calls: 1,
                failures: 0,
                slow: 0
            }
        );
        assert_eq!(
            window.record(FAIL, 101),
            Tally {
                calls: 2,
                failures: 1,
                slow: 0
            }
        );
        assert_eq!(window.tally(1_000), Tally::default());
    }
}
