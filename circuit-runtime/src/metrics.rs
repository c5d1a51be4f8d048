//! What a breaker has seen: monotonic call counters for Prometheus-style
//! export, plus the state machine's current view.

use std::cell::Cell;
use std::sync::OnceLock;
use std::time::Instant;

use crate::sync::{AtomicU64, Ordering};

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
    /// Calls rejected without running.
    pub rejected_calls: u64,
    /// Calls, successful or not, that took at least `slow_call_duration`.
    pub slow_calls: u64,
    /// Transitions into `Open`.
    pub times_opened: u64,
    /// Transitions into `HalfOpen`.
    pub times_half_opened: u64,
    /// Transitions into `Closed`.
    pub times_closed: u64,
    /// Failures in a row in the current closed period.
    pub consecutive_failures: u32,
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

/// Which monotonic counter an event bumps.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Counter {
    Successful = 0,
    Failed = 1,
    Ignored = 2,
    Rejected = 3,
    Slow = 4,
}

const COUNTERS: usize = 5;

/// One thread group's counters, alone on its cache lines so threads bumping
/// different stripes never invalidate each other's lines.
#[repr(align(128))]
#[derive(Default)]
struct Stripe([AtomicU64; COUNTERS]);

/// Monotonic call counters, striped by thread: every call bumps one counter,
/// and on a shared breaker a single counter would be a cache line that every
/// core fights over. Reading sums the stripes, which only metrics do.
pub(crate) struct CallCounters {
    stripes: Box<[Stripe]>,
}

impl CallCounters {
    pub(crate) fn new() -> Self {
        Self {
            stripes: (0..stripe_count()).map(|_| Stripe::default()).collect(),
        }
    }

    #[inline]
    pub(crate) fn add(&self, counter: Counter) {
        // The stripe count is a power of two, so masking picks a stripe.
        let stripe = &self.stripes[thread_index() & (self.stripes.len() - 1)];
        stripe.0[counter as usize].fetch_add(1, Ordering::Relaxed);
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
            .field("slow", &self.get(Counter::Slow))
            .finish()
    }
}

/// Enough stripes that each core usually has its own, capped so an idle
/// breaker stays small (64 stripes are 8 KiB).
fn stripe_count() -> usize {
    static COUNT: OnceLock<usize> = OnceLock::new();
    *COUNT.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(4, std::num::NonZeroUsize::get)
            .next_power_of_two()
            .min(64)
    })
}

/// A small number fixed per thread, handed out in order so consecutive
/// threads land on different stripes.
#[inline]
fn thread_index() -> usize {
    // Plain std: a static cannot hold a loom atomic.
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    thread_local! {
        static INDEX: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    INDEX
        .try_with(|index| {
            let current = index.get();
            if current != usize::MAX {
                return current;
            }
            // Masked so the index never reaches the "unassigned" marker.
            let assigned =
                NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) & (usize::MAX >> 1);
            index.set(assigned);
            assigned
        })
        // A thread tearing down its thread-locals still counts, on stripe 0.
        .unwrap_or(0)
}
