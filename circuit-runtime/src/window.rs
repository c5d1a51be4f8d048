//! The sliding window that failure-rate and slow-call-rate rules judge:
//! either the last N outcomes or the outcomes of the last stretch of time.
//! Both are lock-free; recording an outcome is a few atomic ops.

use std::time::Duration;

use crate::clock::saturating_nanos;
use crate::config::WindowKind;
use crate::sync::{AtomicU64, Ordering};
use crate::tagged::{self, pack, unpack};

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
        Self::ratio(self.failures, self.calls)
    }

    pub(crate) fn slow_call_rate(self) -> Option<f64> {
        Self::ratio(self.slow, self.calls)
    }

    /// `part / whole`, the one way a rate is computed, or `None` for an
    /// empty window.
    #[allow(clippy::cast_precision_loss)] // counts far below 2^52
    pub(crate) fn ratio(part: u64, whole: u64) -> Option<f64> {
        (whole > 0).then(|| part as f64 / whole as f64)
    }
}

/// The window of one closed period at a time.
///
/// An outcome may only enter the window of the period it was admitted in.
/// Checking the period and then writing would let a transition empty the
/// window in between and the late outcome land in the next period's
/// window, so each kind makes the check and the write one step: a count
/// window tags its words with the period (a write from another period
/// fails its compare-and-swap), a time window lets writers in through a
/// [`PeriodGate`].
#[derive(Debug)]
pub(crate) enum Window {
    Calls(CountWindow),
    Time(Box<TimeWindow>),
}

impl Window {
    /// An empty window for the closed period tagged `tag`.
    pub(crate) fn new(kind: WindowKind, tag: u32) -> Self {
        match kind {
            WindowKind::Calls(size) => Window::Calls(CountWindow::new(size, tag)),
            WindowKind::Duration(span) => Window::Time(Box::new(TimeWindow::new(span, tag))),
        }
    }

    /// Adds one outcome of the period tagged `tag` and returns the tally
    /// including it, or `None` when that period is over. `now` is only read
    /// by time windows; count windows are handed 0 and never look.
    #[inline]
    pub(crate) fn record(&self, tag: u32, outcome: Outcome, now: u64) -> Option<Tally> {
        match self {
            Window::Calls(window) => window.record(tag, outcome),
            Window::Time(window) => window.record(tag, outcome, now),
        }
    }

    pub(crate) fn tally(&self, now: u64) -> Tally {
        match self {
            Window::Calls(window) => window.tally(),
            Window::Time(window) => window.tally(now),
        }
    }

    /// Empties the window for the closed period tagged `tag`. Called by the
    /// transition into that period, before it publishes the period, so no
    /// writer of the new period can have written yet.
    pub(crate) fn begin_period(&self, tag: u32) {
        match self {
            Window::Calls(window) => window.begin_period(tag),
            Window::Time(window) => window.begin_period(tag),
        }
    }

    /// Empties the window whole for period `tag`, outcomes already under
    /// that tag included: for a window put back in use during a period it
    /// was used in before. Called under the transition lock.
    pub(crate) fn clear(&self, tag: u32) {
        match self {
            Window::Calls(window) => {
                for slot in &*window.slots {
                    slot.store(pack(tag, 0), Ordering::Relaxed);
                }
                window.begin_period(tag);
            }
            Window::Time(window) => window.begin_period(tag),
        }
    }

    /// Copies into this window, just begun for period `tag`, the most
    /// recent outcomes of `old` from the same period: the last ones that
    /// fit, from a count window into a count window; bucket by bucket,
    /// each at its bucket's start, from a time window into a time window
    /// (those that fall in this window's span). Between a count and a time
    /// window nothing carries over: neither knows what the other would
    /// hold.
    pub(crate) fn take_recent(&self, old: &Window, tag: u32, now: u64) {
        match (self, old) {
            (Window::Calls(new), Window::Calls(old)) => {
                for outcome in old.recent(tag, new.size()) {
                    new.record(tag, outcome);
                }
            }
            (Window::Time(new), Window::Time(old)) => new.take_buckets(old, now),
            _ => {}
        }
    }

    pub(crate) fn needs_time(&self) -> bool {
        matches!(self, Window::Time(_))
    }
}

/// Lets writers of one closed period at a time into a time window. One
/// word: the tag of the period whose writers may enter, in the high 32
/// bits, and how many writers are inside, in the low 32.
#[derive(Debug)]
struct PeriodGate {
    word: AtomicU64,
}

/// A writer inside the gate; leaves on drop.
struct Inside<'a>(&'a PeriodGate);

impl Drop for Inside<'_> {
    #[inline]
    fn drop(&mut self) {
        // Release: the writer's updates happen before a `close_behind`
        // that sees it gone.
        self.0.word.fetch_sub(1, Ordering::Release);
    }
}

const WRITERS: u64 = 0xFFFF_FFFF;

impl PeriodGate {
    fn new(tag: u32) -> Self {
        Self {
            word: AtomicU64::new(pack(tag, 0)),
        }
    }

    #[inline]
    fn enter(&self, tag: u32) -> Option<Inside<'_>> {
        tagged::update(&self.word, tag, |writers| Some(writers + 1))
            .ok()
            .map(|_| Inside(self))
    }

    /// Lets only writers tagged `tag` in from now on, then waits for the
    /// writers already inside to leave. They run no user code and take no
    /// lock inside, only a few atomic operations, so the wait is short. It
    /// happens only on a transition into `Closed`: a reset, or the trial
    /// success that closes the breaker, whose caller waits here under the
    /// breaker's mutex.
    fn close_behind(&self, tag: u32) {
        let _ = self
            .word
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |word| {
                Some(pack(tag, 0) | word & WRITERS)
            });
        while self.word.load(Ordering::Acquire) & WRITERS != 0 {
            spin_wait();
        }
    }
}

/// One turn of waiting for another thread to finish a few instructions.
fn spin_wait() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    std::thread::yield_now();
}

const PRESENT: u32 = 1;
const FAILED: u32 = 2;
const SLOW: u32 = 4;

fn encode(outcome: Outcome) -> u32 {
    PRESENT | if outcome.failed { FAILED } else { 0 } | if outcome.slow { SLOW } else { 0 }
}

/// The last `size` outcomes in a ring of slots. Running totals of failures
/// and slow calls are adjusted by the difference between the outcome a
/// write replaces and the one it writes, so judging a rate never scans.
///
/// Every word carries the tag of the closed period it belongs to: the
/// position counter, each slot, each total. A new period rewrites the
/// counter and the totals with its tag and leaves the slots alone: a slot
/// tagged with another period reads as empty. So emptying the window costs
/// three stores whatever its size, and a late writer from an ended period
/// fails its compare-and-swap on the first word the new period wrote
/// instead of landing in the new window.
#[derive(Debug)]
pub(crate) struct CountWindow {
    /// `tag << 32 | outcome bits`.
    slots: Box<[AtomicU64]>,
    /// Lemire's fast-modulo constant for `slots.len()`: a slot index costs a
    /// multiplication instead of a division on every call.
    modulo: FastModulo,
    /// `tag << 32 | position`: the position the next outcome is written at
    /// (modulo the size), which is also how many outcomes the window holds
    /// until it is full.
    written: AtomicU64,
    /// The largest multiple of the size that fits a position: the position
    /// goes from just below it back to `size`, which is the same slot and
    /// still means "full".
    wrap_at: u32,
    /// `tag << 32 | count`, the count wrapping: see [`clamp_count`].
    failures: AtomicU64,
    slow: AtomicU64,
}

impl CountWindow {
    fn new(size: u32, tag: u32) -> Self {
        Self {
            slots: (0..size).map(|_| AtomicU64::new(pack(tag, 0))).collect(),
            modulo: FastModulo::new(size),
            written: AtomicU64::new(pack(tag, 0)),
            wrap_at: u32::MAX - u32::MAX % size,
            failures: AtomicU64::new(pack(tag, 0)),
            slow: AtomicU64::new(pack(tag, 0)),
        }
    }

    fn size(&self) -> u32 {
        u32::try_from(self.slots.len()).unwrap_or(u32::MAX)
    }

    #[inline]
    fn record(&self, tag: u32, outcome: Outcome) -> Option<Tally> {
        let position = self.claim_position(tag)?;
        let new = pack(tag, encode(outcome));
        let slot = &self.slots[self.modulo.reduce(position)];
        // Most calls replace a success with a success: nothing to write or
        // adjust, and no locked instruction on the hot path.
        let mut old = slot.load(Ordering::Acquire);
        while old != new {
            // A slot holding a newer period's outcome was loaded after
            // that period began: the re-check sees it and gives up.
            if unpack(self.written.load(Ordering::Acquire)).0 != tag {
                return None;
            }
            match slot.compare_exchange_weak(old, new, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => {
                    let (old_tag, old_bits) = unpack(old);
                    let replaced = if old_tag == tag { old_bits } else { 0 };
                    adjust(&self.failures, tag, replaced & FAILED != 0, outcome.failed);
                    adjust(&self.slow, tag, replaced & SLOW != 0, outcome.slow);
                    break;
                }
                Err(actual) => old = actual,
            }
        }
        Some(self.tally_at(tag, position.saturating_add(1)))
    }

    /// Takes the next position of period `tag`, or `None` when the window
    /// belongs to another period.
    ///
    /// The loop [`tagged::update`] would run, written out: through it, this
    /// hot path measured 27 to 45 ns against 23 to 26 (the `rate_window`
    /// bench, alternating runs of both builds).
    #[inline]
    fn claim_position(&self, tag: u32) -> Option<u32> {
        let mut word = self.written.load(Ordering::Acquire);
        loop {
            let (written_tag, position) = unpack(word);
            if written_tag != tag {
                return None;
            }
            let next = if position + 1 == self.wrap_at {
                self.size()
            } else {
                position + 1
            };
            match self.written.compare_exchange_weak(
                word,
                pack(tag, next),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Some(position),
                Err(actual) => word = actual,
            }
        }
    }

    fn tally(&self) -> Tally {
        let (tag, position) = unpack(self.written.load(Ordering::Acquire));
        self.tally_at(tag, position)
    }

    /// The last `limit` outcomes of period `tag`, oldest first.
    fn recent(&self, tag: u32, limit: u32) -> Vec<Outcome> {
        let (written_tag, written) = unpack(self.written.load(Ordering::Acquire));
        if written_tag != tag {
            return Vec::new();
        }
        let held = written.min(self.size()).min(limit);
        // Positions are continuous modulo the size across the wrap, which
        // lands on a multiple of it.
        (written - held..written)
            .filter_map(|position| {
                let (slot_tag, bits) =
                    unpack(self.slots[self.modulo.reduce(position)].load(Ordering::Acquire));
                (slot_tag == tag && bits & PRESENT != 0).then_some(Outcome {
                    failed: bits & FAILED != 0,
                    slow: bits & SLOW != 0,
                })
            })
            .collect()
    }

    #[inline]
    fn tally_at(&self, tag: u32, written: u32) -> Tally {
        let calls = u64::from(written.min(self.size()));
        // Under a race a total can lag its slots by an update (even dip
        // below zero for an instant); clamping keeps a rate within [0, 1].
        let read = |total: &AtomicU64| match unpack(total.load(Ordering::Acquire)) {
            (total_tag, count) if total_tag == tag => clamp_count(count, calls),
            _ => 0,
        };
        Tally {
            calls,
            failures: read(&self.failures),
            slow: read(&self.slow),
        }
    }

    fn begin_period(&self, tag: u32) {
        // Swaps where stores would do: a read-modify-write is ordered after
        // every position claimed before it in every model of the memory
        // model, loom's included (its plain stores can be misordered
        // against a concurrent read-modify-write: tokio-rs/loom#389).
        self.failures.swap(pack(tag, 0), Ordering::AcqRel);
        self.slow.swap(pack(tag, 0), Ordering::AcqRel);
        self.written.swap(pack(tag, 0), Ordering::AcqRel);
    }
}

/// Moves a running total of period `tag` by the change from `was` to
/// `now`, unless the total belongs to another period by now. Wrapping
/// arithmetic lets a racing decrement land before its increment.
#[inline]
fn adjust(total: &AtomicU64, tag: u32, was: bool, now: bool) {
    let delta = match (was, now) {
        (false, true) => 1,
        (true, false) => u32::MAX, // minus one, wrapping
        _ => return,
    };
    let _ = tagged::update(total, tag, |count| Some(count.wrapping_add(delta)));
}

/// Reads a total that may transiently have wrapped below zero.
fn clamp_count(raw: u32, calls: u64) -> u64 {
    if raw > u32::MAX / 2 {
        0
    } else {
        u64::from(raw).min(calls)
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

    /// `position` modulo the divisor.
    #[inline]
    #[allow(clippy::cast_possible_truncation)] // the truncation is the algorithm
    fn reduce(&self, position: u32) -> usize {
        let lowbits = self.multiplier.wrapping_mul(u64::from(position));
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
    /// Buckets are several words each, so a writer checks its period and
    /// updates them inside the gate.
    gate: PeriodGate,
}

#[derive(Debug, Default)]
struct Bucket {
    /// The bucket number (time / `bucket_nanos`) plus one; zero when empty.
    stamp: AtomicU64,
    calls: AtomicU64,
    failures: AtomicU64,
    slow: AtomicU64,
}

/// The stamp of bucket `number`: never zero, which means "empty". At the
/// end of time (a clock advanced by `Duration::MAX` with one-nanosecond
/// buckets) the last stamp is reused rather than wrapping to "empty".
fn stamp_of(number: u64) -> u64 {
    number.saturating_add(1)
}

impl TimeWindow {
    fn new(span: Duration, tag: u32) -> Self {
        Self {
            bucket_nanos: (saturating_nanos(span) / BUCKETS).max(1),
            buckets: Default::default(),
            gate: PeriodGate::new(tag),
        }
    }

    fn record(&self, tag: u32, outcome: Outcome, now: u64) -> Option<Tally> {
        let inside = self.gate.enter(tag)?;
        self.add(outcome, now);
        drop(inside);
        Some(self.tally(now))
    }

    fn add(&self, outcome: Outcome, now: u64) {
        self.add_counts(now, 1, u64::from(outcome.failed), u64::from(outcome.slow));
    }

    /// Adds `old`'s buckets that fall within this window's span at `now`,
    /// oldest first, each at the start of its bucket.
    fn take_buckets(&self, old: &TimeWindow, now: u64) {
        let oldest = stamp_of(now / self.bucket_nanos).saturating_sub(BUCKETS - 1);
        let mut buckets: Vec<(u64, [u64; 3])> = old
            .buckets
            .iter()
            .map(|bucket| {
                let load = |count: &AtomicU64| count.load(Ordering::Relaxed);
                (
                    bucket.stamp.load(Ordering::Acquire),
                    [
                        load(&bucket.calls),
                        load(&bucket.failures),
                        load(&bucket.slow),
                    ],
                )
            })
            .filter(|&(stamp, _)| stamp != 0)
            .collect();
        buckets.sort_unstable_by_key(|&(stamp, _)| stamp);
        for (stamp, [calls, failures, slow]) in buckets {
            let at = (stamp - 1).saturating_mul(old.bucket_nanos);
            if at <= now && stamp_of(at / self.bucket_nanos) >= oldest {
                self.add_counts(at, calls, failures.min(calls), slow.min(calls));
            }
        }
    }

    /// Adds `calls` outcomes at `now`, `failures` and `slow` of them
    /// failed and slow.
    #[inline]
    fn add_counts(&self, now: u64, calls: u64, failures: u64, slow: u64) {
        let current = stamp_of(now / self.bucket_nanos);
        // Placed by stamp, not by bucket number: at the end of time the
        // numbers saturate into one stamp, and ten consecutive stamps must
        // still have ten buckets.
        let bucket = &self.buckets[usize::try_from(current % BUCKETS).unwrap_or(0)];
        let stamp = bucket.stamp.load(Ordering::Acquire);
        if stamp < current
            && bucket
                .stamp
                .compare_exchange(stamp, current, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            // This writer recycles the bucket. A concurrent writer that saw
            // the new stamp first may have some of its counts zeroed here
            // and not others (a failure counted without its call, say);
            // the tally clamps failures and slow calls to the calls, and
            // the window is a statistic: an exact one would need a lock per
            // bucket.
            bucket.calls.store(0, Ordering::Relaxed);
            bucket.failures.store(0, Ordering::Relaxed);
            bucket.slow.store(0, Ordering::Relaxed);
        }
        bucket.calls.fetch_add(calls, Ordering::Relaxed);
        if failures != 0 {
            bucket.failures.fetch_add(failures, Ordering::Relaxed);
        }
        if slow != 0 {
            bucket.slow.fetch_add(slow, Ordering::Relaxed);
        }
    }

    fn tally(&self, now: u64) -> Tally {
        let current = stamp_of(now / self.bucket_nanos);
        let oldest = current.saturating_sub(BUCKETS - 1);
        let mut tally = Tally::default();
        for bucket in &self.buckets {
            let stamp = bucket.stamp.load(Ordering::Acquire);
            if stamp >= oldest && stamp <= current && stamp != 0 {
                let add = |total: &mut u64, count: &AtomicU64| {
                    *total = total.saturating_add(count.load(Ordering::Relaxed));
                };
                add(&mut tally.calls, &bucket.calls);
                add(&mut tally.failures, &bucket.failures);
                add(&mut tally.slow, &bucket.slow);
            }
        }
        tally.failures = tally.failures.min(tally.calls);
        tally.slow = tally.slow.min(tally.calls);
        tally
    }

    /// Empties the window once the writers of earlier periods are out.
    fn begin_period(&self, tag: u32) {
        self.gate.close_behind(tag);
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
    fn fast_modulo_matches_the_remainder() {
        for divisor in [1, 2, 3, 7, 10, 100, 1_000_000] {
            let modulo = FastModulo::new(divisor);
            for position in (0..5_000).chain([u32::MAX - 3, u32::MAX]) {
                let expected = (position % divisor) as usize;
                assert_eq!(modulo.reduce(position), expected, "{position} % {divisor}");
            }
        }
    }

    fn tally(calls: u64, failures: u64) -> Tally {
        Tally {
            calls,
            failures,
            slow: 0,
        }
    }

    #[test]
    fn count_window_forgets_the_oldest_outcome() {
        let window = CountWindow::new(3, 0);
        window.record(0, FAIL);
        window.record(0, FAIL);
        assert_eq!(window.record(0, OK), Some(tally(3, 2)));
        assert_eq!(window.record(0, OK), Some(tally(3, 1)));
        window.begin_period(1);
        assert_eq!(window.tally(), Tally::default());
        assert_eq!(window.record(1, FAIL), Some(tally(1, 1)));
        assert_eq!(window.record(1, OK), Some(tally(2, 1)));
    }

    #[test]
    fn count_window_takes_nothing_from_an_ended_period() {
        let window = CountWindow::new(2, 7);
        window.record(7, FAIL);
        window.begin_period(8);
        assert_eq!(window.record(7, FAIL), None);
        assert_eq!(window.tally(), Tally::default());
        // The slot the old failure left is read as empty, not subtracted.
        assert_eq!(window.record(8, OK), Some(tally(1, 0)));
        assert_eq!(window.record(8, OK), Some(tally(2, 0)));
        assert_eq!(window.record(8, FAIL), Some(tally(2, 1)));
    }

    #[test]
    fn count_window_stays_full_when_its_position_wraps() {
        let window = CountWindow::new(3, 0);
        let near_the_end = window.wrap_at - 4;
        window
            .written
            .store(pack(0, near_the_end), Ordering::Relaxed);
        for _ in 0..3 {
            window.record(0, FAIL);
        }
        for expected_failures in [2, 1, 0, 0] {
            assert_eq!(window.record(0, OK), Some(tally(3, expected_failures)));
        }
        let (_, position) = unpack(window.written.load(Ordering::Relaxed));
        assert!(position < near_the_end, "wrapped, to {position}");
    }

    #[test]
    fn time_window_drops_buckets_older_than_the_span() {
        let window = TimeWindow::new(Duration::from_nanos(100), 0);
        window.record(0, FAIL, 5);
        window.record(0, OK, 55);
        assert_eq!(window.tally(99), tally(2, 1));
        // At 100 the bucket of 0..10 has left the window; 50..60 remains.
        assert_eq!(window.tally(100), tally(1, 0));
        assert_eq!(window.record(0, FAIL, 101), Some(tally(2, 1)));
        assert_eq!(window.tally(1_000), Tally::default());
        window.begin_period(1);
        assert_eq!(window.record(0, FAIL, 1_001), None);
        assert_eq!(window.tally(1_001), Tally::default());
    }

    /// With one-nanosecond buckets, the last ten instants of time are ten
    /// stamps, the last one saturated: they need ten distinct buckets.
    #[test]
    fn time_window_keeps_ten_buckets_at_the_end_of_time() {
        let window = TimeWindow::new(Duration::from_nanos(5), 0);
        window.record(0, OK, u64::MAX - 10);
        assert_eq!(window.record(0, FAIL, u64::MAX), Some(tally(2, 1)));
        assert_eq!(window.record(0, FAIL, u64::MAX), Some(tally(3, 2)));
    }
}
