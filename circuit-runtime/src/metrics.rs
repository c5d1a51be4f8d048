//! What a breaker has seen: monotonic call counters (they never go down, so
//! a metrics system can treat them as counters), plus the state machine's
//! current view.

use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use crate::sync::{lock_std, AtomicU64, Ordering};

/// A point-in-time view of one breaker's counters.
///
/// Call counters never go down for the life of the breaker, not even on
/// [`reset`](crate::CircuitBreaker::reset), so they can feed counters of a
/// metrics system directly. `total_calls` is `successful_calls +
/// failed_calls + ignored_calls`: calls that ran to a verdict. Rejections
/// are counted apart, and a cancelled call counts as nothing.
///
/// ```
/// use circuit_runtime::{CircuitBreaker, Config};
///
/// let breaker = CircuitBreaker::new("search", Config::default());
/// let _ = breaker.call(|| Ok::<_, ()>(1));
/// let _ = breaker.call(|| Err::<(), _>(()));
///
/// let metrics = breaker.metrics();
/// assert_eq!(metrics.total_calls, 2);
/// assert_eq!(metrics.successful_calls, 1);
/// assert_eq!(metrics.failed_calls, 1);
/// assert_eq!(metrics.consecutive_failures, 1);
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct Metrics {
    /// Calls that ran to a verdict: successful, failed or ignored.
    pub total_calls: u64,
    /// Calls that succeeded.
    pub successful_calls: u64,
    /// Calls that failed, panics included.
    pub failed_calls: u64,
    /// Calls whose error was classified as not a failure.
    pub ignored_calls: u64,
    /// Calls rejected without running because the breaker was open, forced
    /// open, or half-open with every trial slot taken. Calls turned away by
    /// `max_concurrent_calls` are counted apart, in
    /// [`bulkhead_rejected`](Self::bulkhead_rejected).
    pub rejected_calls: u64,
    /// Calls rejected without running because `max_concurrent_calls` calls
    /// were running already: a busy dependency, not a failing one, so
    /// apart from [`rejected_calls`](Self::rejected_calls).
    ///
    /// ```
    /// use circuit_runtime::{CircuitBreaker, Config};
    ///
    /// let breaker = CircuitBreaker::new("db", Config::builder().max_concurrent_calls(1).build()?);
    /// let _running = breaker.try_acquire()?;
    /// assert!(breaker.try_acquire().is_err());
    /// assert_eq!(breaker.metrics().bulkhead_rejected, 1);
    /// assert_eq!(breaker.metrics().rejected_calls, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub bulkhead_rejected: u64,
    /// Fallbacks run because the breaker rejected the call.
    pub fallbacks_after_rejection: u64,
    /// Fallbacks run because the call failed (`fallback_on = "any_error"`).
    pub fallbacks_after_failure: u64,
    /// Attempts made by `#[retry]` after a failed attempt through this
    /// breaker (first attempts are not retries).
    pub retry_attempts: u64,
    /// How the calls of `#[retry]` through this breaker ended.
    pub retry_calls: RetryCalls,
    /// Calls, successful or not, that took at least `slow_call_duration`,
    /// and calls cut off at a time limit (a `timeout`), which ran too long
    /// by definition.
    pub slow_calls: u64,
    /// Transitions into `Open`.
    pub times_opened: u64,
    /// Transitions into `HalfOpen`.
    pub times_half_opened: u64,
    /// Transitions into `Closed`.
    pub times_closed: u64,
    /// Failures in a row in the current closed period.
    pub consecutive_failures: u32,
    /// Trial successes in the current half-open period (`success_threshold`
    /// of them close the breaker).
    pub trial_successes: u32,
    /// The share of failures among the outcomes in the current window, when
    /// the breaker keeps a window (a rate rule is configured) and it is not
    /// empty.
    pub failure_rate: Option<f64>,
    /// Likewise, the share of slow calls in the current window.
    pub slow_call_rate: Option<f64>,
    /// When the last failure was recorded.
    pub last_failure_at: Option<Instant>,
    /// When the breaker last changed state.
    pub last_transition_at: Option<Instant>,
}

impl Metrics {
    /// What happened between `earlier` (this breaker's metrics taken
    /// before) and these: every counter as the difference, 0 where
    /// `earlier` counted more (the name's breaker was replaced meanwhile);
    /// the current figures (failures in a row, trial successes, rates,
    /// times) as they are now. The deltas a backend that shares counts
    /// between replicas pushes.
    ///
    /// ```
    /// use circuit_runtime::CircuitBreaker;
    ///
    /// let breaker = CircuitBreaker::new("db", Default::default());
    /// breaker.record_success();
    /// let before = breaker.metrics();
    /// breaker.record_failure();
    /// breaker.record_failure();
    /// let delta = breaker.metrics().since(&before);
    /// assert_eq!((delta.successful_calls, delta.failed_calls, delta.total_calls), (0, 2, 2));
    /// assert_eq!(delta.consecutive_failures, 2, "as it is now");
    /// ```
    #[must_use]
    pub fn since(&self, earlier: &Metrics) -> Metrics {
        let mut delta = self.clone();
        for (now, then) in [
            (&mut delta.total_calls, earlier.total_calls),
            (&mut delta.successful_calls, earlier.successful_calls),
            (&mut delta.failed_calls, earlier.failed_calls),
            (&mut delta.ignored_calls, earlier.ignored_calls),
            (&mut delta.rejected_calls, earlier.rejected_calls),
            (&mut delta.bulkhead_rejected, earlier.bulkhead_rejected),
            (
                &mut delta.fallbacks_after_rejection,
                earlier.fallbacks_after_rejection,
            ),
            (
                &mut delta.fallbacks_after_failure,
                earlier.fallbacks_after_failure,
            ),
            (&mut delta.retry_attempts, earlier.retry_attempts),
            (&mut delta.slow_calls, earlier.slow_calls),
            (&mut delta.times_opened, earlier.times_opened),
            (&mut delta.times_half_opened, earlier.times_half_opened),
            (&mut delta.times_closed, earlier.times_closed),
            (
                &mut delta.retry_calls.successful_without_retry,
                earlier.retry_calls.successful_without_retry,
            ),
            (
                &mut delta.retry_calls.successful_with_retry,
                earlier.retry_calls.successful_with_retry,
            ),
            (
                &mut delta.retry_calls.failed_without_retry,
                earlier.retry_calls.failed_without_retry,
            ),
            (
                &mut delta.retry_calls.failed_with_retry,
                earlier.retry_calls.failed_with_retry,
            ),
            (
                &mut delta.retry_calls.budget_exhausted,
                earlier.retry_calls.budget_exhausted,
            ),
        ] {
            *now = now.saturating_sub(then);
        }
        delta
    }
}

/// How the retried calls through a breaker ended: each call of a
/// `#[retry]` function counts once, however many attempts it made.
///
/// ```
/// let breaker = circuit_runtime::CircuitBreaker::new("search", Default::default());
/// assert_eq!(breaker.metrics().retry_calls.successful_with_retry, 0);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryCalls {
    /// Succeeded at the first attempt.
    pub successful_without_retry: u64,
    /// Succeeded after one or more retries.
    pub successful_with_retry: u64,
    /// Failed (or were rejected) at the first attempt and were not retried.
    pub failed_without_retry: u64,
    /// Failed (or were rejected) after one or more retries.
    pub failed_with_retry: u64,
    /// Stopped because the retry budget was spent.
    pub budget_exhausted: u64,
}

/// Which monotonic counter an event bumps.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Counter {
    Successful = 0,
    Failed = 1,
    Ignored = 2,
    Rejected = 3,
    Slow = 4,
    FallbackAfterRejection = 5,
    FallbackAfterFailure = 6,
    RetryAttempt = 7,
    RetrySucceededFirst = 8,
    RetrySucceededLater = 9,
    RetryFailedFirst = 10,
    RetryFailedLater = 11,
    RetryBudgetExhausted = 12,
    /// A first-attempt success of an async `#[retry]` call, which the
    /// breaker also counted as a plain success.
    RetrySucceededFirstAlsoCounted = 13,
    /// A call turned away at `max_concurrent_calls`.
    BulkheadRejected = 14,
}

// 15 counters of 8 bytes still fit a stripe's 128 bytes.
const COUNTERS: usize = 15;

/// One thread's counters, alone on their cache lines so threads bumping
/// their own stripes never invalidate each other's lines.
#[repr(align(128))]
#[derive(Default)]
struct Stripe([AtomicU64; COUNTERS]);

impl Stripe {
    /// Bumps `counter` with a plain load and store: only for the thread
    /// that owns this stripe, the one writer it ever has.
    #[inline]
    fn bump_owned(&self, counter: Counter) {
        let cell = &self.0[counter as usize];
        cell.store(cell.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }
}

/// Monotonic call counters, one stripe per thread: every call bumps one
/// counter, and on a shared breaker a single counter would be a cache line
/// that every core fights over. Reading sums the stripes, which only metrics
/// do.
///
/// A thread that owns a stripe (see [`ThreadSlot`]) bumps it with a plain
/// load and store instead of a locked read-modify-write: no other thread
/// writes that stripe, so no update can be lost, and it saves the hot path
/// the cost of a locked instruction. Threads beyond the stripe count share
/// stripe 0 with locked increments.
pub(crate) struct CallCounters {
    stripes: Box<[Stripe]>,
}

impl CallCounters {
    pub(crate) fn new() -> Self {
        Self {
            stripes: (0..slot_count()).map(|_| Stripe::default()).collect(),
        }
    }

    /// Bumps `counter` on this thread's stripe. One branch in the common
    /// case: the thread's stripe index, kept where no lazy initialization
    /// is checked, is in range only once claimed (see [`ThreadSlot`]).
    #[inline]
    pub(crate) fn add(&self, counter: Counter) {
        match self.stripes.get(ThreadSlot::current()) {
            Some(stripe) => stripe.bump_owned(counter),
            None => self.add_unowned(counter),
        }
    }

    /// Bumps `counter` for a thread that has no stripe index yet (it claims
    /// one) or will never have one (it shares stripe 0, with locked adds).
    #[cold]
    #[inline(never)]
    fn add_unowned(&self, counter: Counter) {
        let slot = ThreadSlot::claim_current();
        match self.stripes.get(slot) {
            Some(stripe) if slot != SHARED_SLOT => stripe.bump_owned(counter),
            _ => {
                self.stripes[SHARED_SLOT].0[counter as usize].fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    pub(crate) fn retry_calls(&self) -> RetryCalls {
        RetryCalls {
            successful_without_retry: self.get(Counter::RetrySucceededFirst)
                + self.get(Counter::RetrySucceededFirstAlsoCounted),
            successful_with_retry: self.get(Counter::RetrySucceededLater),
            failed_without_retry: self.get(Counter::RetryFailedFirst),
            failed_with_retry: self.get(Counter::RetryFailedLater),
            budget_exhausted: self.get(Counter::RetryBudgetExhausted),
        }
    }

    pub(crate) fn get(&self, counter: Counter) -> u64 {
        self.stripes
            .iter()
            .map(|stripe| stripe.0[counter as usize].load(Ordering::Relaxed))
            .sum()
    }
}

impl std::fmt::Debug for CallCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallCounters")
            .field("successful", &self.get(Counter::Successful))
            .field("failed", &self.get(Counter::Failed))
            .field("ignored", &self.get(Counter::Ignored))
            .field("rejected", &self.get(Counter::Rejected))
            .field("bulkhead_rejected", &self.get(Counter::BulkheadRejected))
            .field("slow", &self.get(Counter::Slow))
            .field(
                "fallbacks_after_rejection",
                &self.get(Counter::FallbackAfterRejection),
            )
            .field(
                "fallbacks_after_failure",
                &self.get(Counter::FallbackAfterFailure),
            )
            .field("retry_attempts", &self.get(Counter::RetryAttempt))
            .field("retry_calls", &self.retry_calls())
            .finish()
    }
}

/// The stripe every thread without a slot of its own shares.
const SHARED_SLOT: usize = 0;

/// Stripes per breaker: room for a few threads per core (worker pools,
/// blocking pools), capped so an idle breaker stays small (256 stripes are
/// 32 KiB).
fn slot_count() -> usize {
    static COUNT: OnceLock<usize> = OnceLock::new();
    *COUNT.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(4, std::num::NonZeroUsize::get);
        (cores * 4).next_power_of_two().clamp(8, 256)
    })
}

/// A stripe index owned by one live thread. Indexes come back to a free
/// list when their thread exits, and the mutex around that list orders the
/// old owner's last writes before the new owner's first read, so a reused
/// stripe keeps its counts.
struct ThreadSlot(usize);

/// Indexes returned by exited threads.
static FREE_SLOTS: Mutex<Vec<usize>> = Mutex::new(Vec::new());
/// The next never-used index (index 0 is the shared stripe).
#[cfg_attr(loom, allow(dead_code))] // loom models use the shared stripe only
static NEXT_SLOT: AtomicUsize = AtomicUsize::new(SHARED_SLOT + 1);

/// What [`ThreadSlot::current`] returns before the thread claimed an index.
/// Out of range of every breaker's stripes, as [`NO_SLOT`] is: neither
/// ever names stripe 0, which only takes locked adds.
#[cfg_attr(loom, allow(dead_code))]
const UNCLAIMED: usize = usize::MAX;
/// What [`ThreadSlot::current`] returns for a thread without a stripe of
/// its own: every index was taken, or its thread-locals are being torn
/// down.
const NO_SLOT: usize = usize::MAX - 1;

#[cfg(not(loom))]
thread_local! {
    /// This thread's stripe index once claimed. A `const` cell with nothing
    /// to drop: reading it checks no lazy initialization and works even
    /// while the thread's other thread-locals are torn down.
    static INDEX: std::cell::Cell<usize> = const { std::cell::Cell::new(UNCLAIMED) };
    /// The claimed index's owner, which gives it back when the thread exits.
    static OWNER: ThreadSlot = ThreadSlot::claim();
}

impl ThreadSlot {
    #[cfg_attr(loom, allow(dead_code))]
    fn claim() -> ThreadSlot {
        let reused = lock_std(&FREE_SLOTS).pop();
        ThreadSlot(reused.unwrap_or_else(|| {
            let fresh = NEXT_SLOT.fetch_add(1, AtomicOrdering::Relaxed);
            if fresh < slot_count() {
                fresh
            } else {
                SHARED_SLOT
            }
        }))
    }

    /// This thread's stripe index, or an index out of every breaker's range
    /// ([`UNCLAIMED`], [`NO_SLOT`]) when it has none: never the shared
    /// stripe's.
    #[cfg(not(loom))]
    #[inline]
    fn current() -> usize {
        INDEX.get()
    }

    /// Claims this thread's stripe index if it has not yet, and returns it:
    /// [`SHARED_SLOT`] for a thread that gets none.
    #[cfg(not(loom))]
    fn claim_current() -> usize {
        if INDEX.get() == UNCLAIMED {
            // A thread tearing down its thread-locals counts on the shared
            // stripe, from now on.
            let claimed = OWNER.try_with(|owner| owner.0).unwrap_or(SHARED_SLOT);
            INDEX.set(if claimed == SHARED_SLOT {
                NO_SLOT
            } else {
                claimed
            });
        }
        match INDEX.get() {
            NO_SLOT => SHARED_SLOT,
            index => index,
        }
    }

    /// Under loom, every model thread runs on one OS thread, so a std
    /// thread-local would hand them all one stripe: use the shared one.
    #[cfg(loom)]
    #[inline]
    fn current() -> usize {
        NO_SLOT
    }

    #[cfg(loom)]
    fn claim_current() -> usize {
        SHARED_SLOT
    }
}

impl Drop for ThreadSlot {
    fn drop(&mut self) {
        if self.0 != SHARED_SLOT {
            // Stop bumping the stripe before another thread may get it.
            #[cfg(not(loom))]
            INDEX.set(NO_SLOT);
            lock_std(&FREE_SLOTS).push(self.0);
        }
    }
}
