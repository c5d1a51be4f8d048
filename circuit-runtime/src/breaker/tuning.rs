//! The options a running breaker reads, changeable while it runs: each
//! option a call reads in an atomic, and the window among the windows the
//! breaker has had. [`reconfigure`](CircuitBreaker::reconfigure) rewrites
//! them in place, under the transition lock, so call sites that cached the
//! breaker see the change on their next call and nothing a call touches
//! is ever freed under it.

use std::iter;
use std::time::Duration;

use super::words::{tag_of, CLOSED_PATH_SLOT, CLOSED_PATH_TIMING, CLOSED_PATH_WINDOW};
use super::CircuitBreaker;
use crate::append_only::AppendOnly;
use crate::clock::saturating_nanos;
use crate::config::{Config, WindowKind};
use crate::events::{Event, Reconfiguration};
use crate::sync::{fence, lock, AtomicU64, Ordering};
use crate::window::Window;

/// The options calls read, one atomic each. A decision that reads one
/// option reads it alone; the window's rate rules read three together,
/// through a sequence count, so a reconfiguration under way never lets a
/// call judge by an old threshold and a new minimum.
#[derive(Debug)]
pub(super) struct Tuning {
    /// Odd while a reconfiguration is writing, bumped again when it is done.
    version: AtomicU64,
    failure_threshold: AtomicU64,
    success_threshold: AtomicU64,
    half_open_max_calls: AtomicU64,
    /// Nanoseconds.
    half_open_timeout: AtomicU64,
    /// Nanoseconds; 0 when no call is slow.
    slow_call_duration: AtomicU64,
    /// 0 when calls are not limited.
    max_concurrent_calls: AtomicU64,
    /// What a closed call needs beyond a count, as `CLOSED_PATH_*` bits:
    /// 0 when nothing. The one option the closed fast path reads.
    closed_path_work: AtomicU64,
    minimum_calls: AtomicU64,
    /// `f64` bits; 0 (the bits of 0.0, never a valid threshold) when off.
    failure_rate_threshold: AtomicU64,
    slow_call_rate_threshold: AtomicU64,
}

/// The rules a window's tally is judged by.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct RateRules {
    pub(super) minimum_calls: u64,
    pub(super) failure_rate_threshold: Option<f64>,
    pub(super) slow_call_rate_threshold: Option<f64>,
}

fn rate_bits(rate: Option<f64>) -> u64 {
    rate.map_or(0, f64::to_bits)
}

fn rate_of(bits: u64) -> Option<f64> {
    (bits != 0).then(|| f64::from_bits(bits))
}

impl Tuning {
    pub(super) fn new(config: &Config) -> Self {
        let tuning = Self {
            version: AtomicU64::new(0),
            failure_threshold: AtomicU64::new(0),
            success_threshold: AtomicU64::new(0),
            half_open_max_calls: AtomicU64::new(0),
            half_open_timeout: AtomicU64::new(0),
            slow_call_duration: AtomicU64::new(0),
            max_concurrent_calls: AtomicU64::new(0),
            closed_path_work: AtomicU64::new(0),
            minimum_calls: AtomicU64::new(0),
            failure_rate_threshold: AtomicU64::new(0),
            slow_call_rate_threshold: AtomicU64::new(0),
        };
        tuning.store(config);
        tuning
    }

    /// Marks a reconfiguration under way: the options and the window
    /// change between this and [`end_write`](Self::end_write). Callers
    /// hold the transition lock, so writers never overlap.
    fn begin_write(&self) -> u64 {
        let version = self.version.load(Ordering::Relaxed);
        self.version.store(version + 1, Ordering::Relaxed);
        fence(Ordering::Release);
        version + 2
    }

    fn end_write(&self, version: u64) {
        self.version.store(version, Ordering::Release);
    }

    fn store(&self, config: &Config) {
        let set = |atomic: &AtomicU64, value: u64| atomic.store(value, Ordering::Relaxed);
        let bit = |on: bool, bit: u64| if on { bit } else { 0 };
        set(&self.failure_threshold, config.failure_threshold().into());
        set(&self.success_threshold, config.success_threshold().into());
        set(
            &self.half_open_max_calls,
            config.half_open_max_calls().into(),
        );
        set(
            &self.half_open_timeout,
            saturating_nanos(config.half_open_timeout()),
        );
        set(
            &self.slow_call_duration,
            config.slow_call_duration().map_or(0, saturating_nanos),
        );
        set(
            &self.max_concurrent_calls,
            config.max_concurrent_calls().map_or(0, u64::from),
        );
        set(
            &self.closed_path_work,
            bit(config.max_concurrent_calls().is_some(), CLOSED_PATH_SLOT)
                | bit(config.slow_call_duration().is_some(), CLOSED_PATH_TIMING)
                | bit(config.keeps_window(), CLOSED_PATH_WINDOW),
        );
        set(&self.minimum_calls, config.minimum_calls().into());
        set(
            &self.failure_rate_threshold,
            rate_bits(config.failure_rate_threshold()),
        );
        set(
            &self.slow_call_rate_threshold,
            rate_bits(config.slow_call_rate_threshold()),
        );
    }

    fn count(atomic: &AtomicU64) -> u32 {
        u32::try_from(atomic.load(Ordering::Relaxed)).unwrap_or(u32::MAX)
    }

    pub(super) fn failure_threshold(&self) -> u32 {
        Self::count(&self.failure_threshold)
    }

    pub(super) fn success_threshold(&self) -> u32 {
        Self::count(&self.success_threshold)
    }

    pub(super) fn half_open_max_calls(&self) -> u32 {
        Self::count(&self.half_open_max_calls)
    }

    pub(super) fn half_open_timeout(&self) -> Duration {
        Duration::from_nanos(self.half_open_timeout.load(Ordering::Relaxed))
    }

    /// Whether calls are timed.
    #[inline]
    pub(super) fn times_calls(&self) -> bool {
        self.slow_call_duration.load(Ordering::Relaxed) != 0
    }

    /// `max_concurrent_calls`, or 0 when calls are not limited.
    #[inline]
    pub(super) fn concurrency_limit(&self) -> u64 {
        self.max_concurrent_calls.load(Ordering::Relaxed)
    }

    /// What a closed call needs beyond a count (a concurrency slot, a
    /// start time, a window to record in), 0 for nothing: one word for the
    /// closed fast path to read rather than three, see
    /// [`StateWord::is_plain_closed`](super::words::StateWord::is_plain_closed).
    /// It only chooses the path: the slow path reads each option it needs
    /// on its own.
    #[inline]
    pub(super) fn closed_path_work(&self) -> u64 {
        self.closed_path_work.load(Ordering::Relaxed)
    }

    /// The duration from which a call is slow, in nanoseconds, if any.
    pub(super) fn slow_call_nanos(&self) -> Option<u64> {
        let nanos = self.slow_call_duration.load(Ordering::Relaxed);
        (nanos != 0).then_some(nanos)
    }

    /// Where a reader of the window and its rules starts: see
    /// [`rate_rules_since`](Self::rate_rules_since).
    #[inline]
    pub(super) fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// The rate rules, if no reconfiguration began since `version` was
    /// read: then they, and the window chosen after reading `version`, are
    /// one configuration's. `None` when one did; the caller then does not
    /// judge, and the next outcome is judged under the new configuration.
    #[inline]
    pub(super) fn rate_rules_since(&self, version: u64) -> Option<RateRules> {
        let rules = self.rate_rules_unchecked();
        fence(Ordering::Acquire);
        (version % 2 == 0 && self.version.load(Ordering::Relaxed) == version).then_some(rules)
    }

    /// The rate rules, each read on its own: during a reconfiguration,
    /// possibly some old and some new, so only good for deciding not to
    /// trip (see `record_in_window`).
    #[inline]
    pub(super) fn rate_rules_unchecked(&self) -> RateRules {
        RateRules {
            minimum_calls: self.minimum_calls.load(Ordering::Relaxed),
            failure_rate_threshold: rate_of(self.failure_rate_threshold.load(Ordering::Relaxed)),
            slow_call_rate_threshold: rate_of(
                self.slow_call_rate_threshold.load(Ordering::Relaxed),
            ),
        }
    }
}

/// Every window the breaker has had, and which one is in use. A window
/// another call may still be writing to cannot be freed without knowing
/// when that call is done; kept instead, it is used again when the breaker
/// is configured back to its kind. So a breaker holds one window per kind
/// it has been configured with, never more.
#[derive(Debug)]
pub(super) struct Windows {
    /// 0 for none, 1 for `initial`, `n` for `later[n - 2]`.
    active: AtomicU64,
    /// The window the breaker was built with, inline: the window most
    /// breakers only ever have is one load away, as it was before windows
    /// could change (the `rate_window` bench).
    initial: Option<(WindowKind, Window)>,
    /// Boxed: the list's segment table is a kilobyte, which inline would
    /// push the breaker's other fields apart, onto more cache lines.
    later: Box<AppendOnly<(WindowKind, Window)>>,
}

impl Windows {
    pub(super) fn new(kind: Option<WindowKind>) -> Self {
        Self {
            active: AtomicU64::new(u64::from(kind.is_some())),
            initial: kind.map(|kind| (kind, Window::new(kind, tag_of(0)))),
            later: Box::default(),
        }
    }

    /// The window in use.
    #[inline]
    pub(super) fn current(&self) -> Option<&Window> {
        self.get(self.active.load(Ordering::Acquire))
    }

    /// The window `active` names: the initial one inline, any later one
    /// out of line.
    #[inline]
    fn get(&self, active: u64) -> Option<&Window> {
        match active {
            0 => None,
            1 => self.initial.as_ref().map(|(_, window)| window),
            later => self.get_later(later),
        }
    }

    /// Out of line: only breakers reconfigured to a new kind of window
    /// come here, and inline its lookup cost the others registers.
    #[cold]
    #[inline(never)]
    fn get_later(&self, active: u64) -> Option<&Window> {
        let (_, window) = self
            .later
            .get(usize::try_from(active.checked_sub(2)?).ok()?)?;
        Some(window)
    }

    /// Puts a window of `kind` in use (or none), holding the current
    /// period's most recent outcomes when the old window was of the same
    /// sort (both count or both time windows). Under the transition lock.
    fn switch(&self, kind: Option<WindowKind>, tag: u32, now: u64) {
        let Some(kind) = kind else {
            self.active.store(0, Ordering::Release);
            return;
        };
        let kept = iter::once(self.initial.as_ref())
            .flatten()
            .chain(self.later.iter())
            .position(|(kept, _)| *kept == kind);
        let active = match (kept, &self.initial) {
            (Some(0), Some(_)) => 1,
            (Some(index), Some(_)) => index as u64 + 1,
            (Some(index), None) => index as u64 + 2,
            (None, _) => self.later.push((kind, Window::new(kind, tag))) as u64 + 2,
        };
        let window = self.get(active).expect("just found or pushed");
        // Emptied whole, not only begun: a window used earlier in this
        // same period holds outcomes under this very tag.
        window.clear(tag);
        if let Some(old) = self.current() {
            window.take_recent(old, tag, now);
        }
        self.active.store(active, Ordering::Release);
    }
}

impl CircuitBreaker {
    /// Changes the breaker's options while it runs. Every holder of the
    /// breaker, every call site that cached it included, sees the new
    /// options from its next call. The breaker keeps its state, counters
    /// and metrics: a tighter `failure_threshold` applies from the next
    /// failure, a resized window keeps its most recent outcomes (a time
    /// window keeps them by the tenth of its span they fell in; a window
    /// that changes between counting calls and covering time starts
    /// empty), and an open period that began under the old
    /// `recovery_timeout` keeps its end.
    ///
    /// The clock stays the breaker's own: times it already measured are on
    /// it. [`Registry::configure`](crate::Registry::configure) replaces a
    /// registry breaker whose clock changes with a fresh one.
    ///
    /// Returns whether any option changed; when one did, observers get an
    /// [`Event::Reconfiguration`](crate::Event::Reconfiguration) naming them.
    ///
    /// ```
    /// use circuit_runtime::{CircuitBreaker, Config, State};
    ///
    /// let breaker = CircuitBreaker::new("feed", Config::default());
    /// breaker.record_failure();
    /// breaker.record_failure();
    /// assert!(breaker.reconfigure(Config::builder().failure_threshold(3).build()?));
    /// assert_eq!(breaker.config().failure_threshold(), 3);
    /// assert!(!breaker.reconfigure(breaker.config()), "nothing to change");
    /// breaker.record_failure();
    /// assert_eq!(breaker.state(), State::Open, "the third consecutive failure trips it");
    /// # Ok::<(), circuit_runtime::ConfigError>(())
    /// ```
    pub fn reconfigure(&self, config: Config) -> bool {
        match self.apply_config(config) {
            Some(change) => {
                self.emit(&Event::Reconfiguration(change));
                true
            }
            None => false,
        }
    }

    /// [`reconfigure`](Self::reconfigure) without telling observers: the
    /// change, if any, for the caller to announce once it holds no lock.
    pub(crate) fn apply_config(&self, config: Config) -> Option<Reconfiguration> {
        let mut recovery = lock(&self.recovery);
        let config = config.with_clock_of(&recovery.config);
        if config == recovery.config {
            return None;
        }
        let changed = recovery.config.differences(&config);
        // The options and the window change under one write of the
        // sequence count: a call that chose the old window and reads the
        // new rules sees the count move, and does not judge by the mix.
        let version = self.tuning.begin_write();
        self.tuning.store(&config);
        let window_kind = |config: &Config| config.keeps_window().then(|| config.window());
        let window = window_kind(&config);
        if window != window_kind(&recovery.config) {
            let tag = self.state.load(Ordering::Acquire).tag();
            self.windows.switch(window, tag, self.timeline.now_nanos());
        }
        self.tuning.end_write(version);
        recovery.open_for.reconfigure(
            config.recovery_timeout(),
            config.recovery_backoff(),
            config.max_recovery_timeout(),
        );
        recovery.jitter.set_share(config.jitter());
        recovery.config = config.clone();
        Some(Reconfiguration {
            name: self.static_name(),
            changed,
            config,
        })
    }
}
