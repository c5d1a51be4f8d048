//! Where a breaker reads the time from: the monotonic system clock, or a
//! [`ManualClock`] that only moves when a test tells it to.

use std::fmt;
use std::time::{Duration, Instant};

use std::sync::Arc;

use crate::sync::{AtomicU64, Ordering};

/// A clock that stands still until [`advance`](ManualClock::advance) moves it.
///
/// Give it to a breaker through [`ConfigBuilder::clock`](crate::ConfigBuilder::clock)
/// to test recovery timeouts, backoff and time windows without sleeping.
/// Clones share one time, so a test keeps a clone and moves the breaker's
/// clock from outside.
///
/// ```
/// use std::time::Duration;
/// use circuit_runtime::{CircuitBreaker, Config, ManualClock, State};
///
/// let clock = ManualClock::new();
/// let config = Config::builder()
///     .failure_threshold(1)
///     .recovery_timeout(Duration::from_secs(30))
///     .clock(clock.clone())
///     .build()?;
/// let breaker = CircuitBreaker::new("payments", config);
///
/// breaker.record_failure();
/// assert_eq!(breaker.state(), State::Open);
///
/// clock.advance(Duration::from_secs(30));
/// let permit = breaker.try_acquire()?; // the recovery timeout has elapsed
/// assert_eq!(breaker.state(), State::HalfOpen);
/// permit.record_success();
/// assert_eq!(breaker.state(), State::Closed);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct ManualClock {
    shared: Arc<ManualTime>,
}

struct ManualTime {
    start: Instant,
    elapsed_nanos: AtomicU64,
}

impl ManualClock {
    /// Creates a clock that reads the current instant until it is advanced.
    ///
    /// ```
    /// let clock = circuit_runtime::ManualClock::new();
    /// assert_eq!(clock.now(), clock.now());
    /// ```
    pub fn new() -> Self {
        Self {
            shared: Arc::new(ManualTime {
                start: Instant::now(),
                elapsed_nanos: AtomicU64::new(0),
            }),
        }
    }

    /// Moves this clock, and every clone of it, forward by `by`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let clock = circuit_runtime::ManualClock::new();
    /// let before = clock.now();
    /// clock.clone().advance(Duration::from_millis(250));
    /// assert_eq!(clock.now() - before, Duration::from_millis(250));
    /// ```
    pub fn advance(&self, by: Duration) {
        // Saturating, not `fetch_add`: that wraps, so a test advancing by
        // `Duration::MAX` ("past every timeout") moved the clock 1ns back.
        let by = saturating_nanos(by);
        let _ =
            self.shared
                .elapsed_nanos
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |nanos| {
                    Some(nanos.saturating_add(by))
                });
    }

    /// The clock's current instant.
    ///
    /// ```
    /// let clock = circuit_runtime::ManualClock::new();
    /// let then = clock.now();
    /// clock.advance(std::time::Duration::from_secs(1));
    /// assert!(clock.now() > then);
    /// ```
    pub fn now(&self) -> Instant {
        self.shared.start + Duration::from_nanos(self.elapsed_nanos())
    }

    fn elapsed_nanos(&self) -> u64 {
        self.shared.elapsed_nanos.load(Ordering::Acquire)
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock")
            .field("elapsed", &Duration::from_nanos(self.elapsed_nanos()))
            .finish()
    }
}

/// Two manual clocks are equal when they are clones of one another.
impl PartialEq for ManualClock {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }
}

impl Eq for ManualClock {}

/// The clock a configuration asks for. An enum rather than a trait object
/// so reading the time is a direct, inlinable call on the hot path.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) enum Clock {
    /// The system's monotonic time: see [`Timeline`].
    #[default]
    Monotonic,
    Manual(ManualClock),
}

/// A breaker keeps its times as nanoseconds since its own origin so they fit
/// in an atomic; this reads them, and converts them to instants for people.
#[derive(Debug)]
pub(crate) struct Timeline {
    source: Source,
    /// The instant of nanosecond 1, for reporting times as `Instant`s.
    origin: Instant,
}

/// Where a timeline reads the time.
#[derive(Debug)]
enum Source {
    /// The CPU's time-stamp counter, scaled to nanoseconds, where it is
    /// invariant (through `quanta`, which falls back to the OS's monotonic
    /// clock elsewhere): an open breaker reads the time on every rejected
    /// call, and on a virtual machine `Instant::now()` costs two to three
    /// times as much (the `open_reject` bench measures both reads).
    Counter {
        clock: quanta::Clock,
        /// The counter's reading at the origin.
        origin: u64,
    },
    Manual(ManualClock),
}

impl Timeline {
    pub(crate) fn new(clock: Clock) -> Self {
        let source = match clock {
            Clock::Monotonic => {
                let clock = quanta::Clock::new();
                let origin = clock.raw();
                Source::Counter { clock, origin }
            }
            Clock::Manual(clock) => Source::Manual(clock),
        };
        let origin = match &source {
            Source::Counter { .. } => Instant::now(),
            Source::Manual(clock) => clock.now(),
        };
        Self { source, origin }
    }

    /// Nanoseconds since the origin, plus one: never zero, so a stored zero
    /// can mean "never".
    #[inline]
    pub(crate) fn now_nanos(&self) -> u64 {
        let since_origin = match &self.source {
            // Saturating at zero should another core's counter lag this one.
            Source::Counter { clock, origin } => clock.delta_as_nanos(*origin, clock.raw()),
            Source::Manual(clock) => self.manual_nanos(clock),
        };
        since_origin.saturating_add(1)
    }

    /// Out of line: only tests read a manual clock, and inlined, its
    /// arithmetic weighed on every caller of `now_nanos`.
    #[inline(never)]
    fn manual_nanos(&self, clock: &ManualClock) -> u64 {
        saturating_nanos(clock.now().saturating_duration_since(self.origin))
    }

    /// The instant of a value returned by [`now_nanos`](Self::now_nanos).
    /// On the counter, as exact as its calibration against the OS clock:
    /// for reports (when the last failure was), never for decisions.
    pub(crate) fn instant(&self, nanos: u64) -> Instant {
        self.origin + Duration::from_nanos(nanos.saturating_sub(1))
    }
}

/// `duration` in nanoseconds, saturating at `u64::MAX` (584 years). Spelled
/// out instead of `as_nanos()` to stay in 64-bit arithmetic: this runs on
/// every rejection.
#[inline]
pub(crate) fn saturating_nanos(duration: Duration) -> u64 {
    duration
        .as_secs()
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::from(duration.subsec_nanos()))
}
