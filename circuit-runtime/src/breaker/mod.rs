//! The state machine: one breaker, its states, and how calls and outcomes
//! move it between them.
//!
//! Everything a call touches is an atomic word:
//! - `state`: the state and a generation that every transition increments.
//!   A permit remembers the generation it was admitted in, and its outcome
//!   only counts while that generation is current (a late failure from
//!   before a recovery must not reopen the freshly closed breaker).
//! - `closed_failures` and `trials`: the counters of the current period,
//!   tagged with the low 32 bits of its generation. Every transition
//!   rewrites them for the new period before it publishes the new state, so
//!   a counter is never older than the state a caller just read; the tag
//!   makes a compare-and-swap from a period that ended meanwhile fail.
//! - the window (when a rate rule needs one) admits only writers of the
//!   closed period it belongs to, see [`Window`].
//!
//! Transitions are rare and take `recovery`, a mutex that also holds the
//! backoff state: under it the transition re-checks that the state word is
//! still the one it judged, writes the new period's data, and only then
//! publishes the new state word. Hooks run after the mutex is released.
//!
//! The modules follow a call through the diagram: [`state`] names where a
//! breaker stands and [`words`] how that is packed into atomics; [`admit`]
//! decides whether a call may run, and hands it a [`permit`]; the permit's
//! verdict is applied by [`record`], which may ask [`transition`] to move
//! the breaker; [`call`] strings these together for `call` and
//! `call_async`. This file holds the breaker itself and its manual
//! controls.

mod admit;
mod call;
mod observe;
pub(crate) mod permit;
mod record;
mod state;
#[cfg(test)]
mod tests;
mod transition;
mod tuning;
mod words;

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use crate::cell::BreakerCell;
use crate::clock::Timeline;
use crate::config::Config;
use crate::events::{HookList, TransitionCause};
use crate::metrics::{CallCounters, Counter, Metrics};
use crate::names::{intern, Name};
use crate::policy::{Backoff, Jitter};
use crate::sync::{lock_std, AtomicU64, Mutex, Ordering};
use crate::tagged;
use crate::window::Tally;

pub(crate) use call::TimedInFlight;
pub use call::{CallFuture, TimedCallFuture};
pub(crate) use observe::transitions_only;
pub use state::State;
use tuning::{Tuning, Windows};
use words::{generation_of, pack_state, state_of, tag_of};

/// A named circuit breaker.
///
/// Use it directly, share it in an `Arc`, or get it from the global
/// [`registry`](crate::registry), which is what `#[circuit_breaker]` does.
///
/// ```
/// use circuit_runtime::{CallError, CircuitBreaker, Config, State};
///
/// let breaker = CircuitBreaker::new("db", Config::builder().failure_threshold(2).build()?);
/// for _ in 0..2 {
///     let _ = breaker.call(|| Err::<(), _>("connection refused"));
/// }
/// assert_eq!(breaker.state(), State::Open);
///
/// let mut ran = false;
/// let result = breaker.call(|| { ran = true; Ok::<_, &str>(()) });
/// assert!(matches!(result, Err(CallError::Rejected(_))));
/// assert!(!ran, "an open breaker does not run the call");
/// # Ok::<(), circuit_runtime::ConfigError>(())
/// ```
pub struct CircuitBreaker {
    name: &'static Name,
    /// The options calls read; the whole configuration is in `recovery`.
    tuning: Tuning,
    timeline: Timeline,
    state: AtomicU64,
    /// Consecutive failures of the current closed period, a tagged word.
    closed_failures: AtomicU64,
    /// Trial calls of the current half-open period, a tagged word whose
    /// value is [`words::trial_value`].
    trials: AtomicU64,
    /// Calls holding a concurrency slot (under `max_concurrent_calls`).
    /// Not tagged with a period: a slot is held by a permit, whatever the
    /// state does meanwhile, and given back when the permit ends.
    running: AtomicU64,
    /// When the current open period ends, in timeline nanoseconds.
    open_until: AtomicU64,
    /// When the current state was entered; 0 before the first transition.
    entered_at: AtomicU64,
    /// When the last failure was recorded; 0 for never.
    last_failure_at: AtomicU64,
    /// In use only when a rate rule needs it.
    windows: Windows,
    counters: CallCounters,
    times_opened: AtomicU64,
    times_half_opened: AtomicU64,
    times_closed: AtomicU64,
    recovery: Mutex<Recovery>,
    /// The call sites that cached this breaker, until the registry stops
    /// handing it out for its name (see
    /// [`Registry::remove`](crate::Registry::remove)): it then empties
    /// their caches, and they fetch the registry's current breaker on their
    /// next call. The call itself never looks here.
    sites: std::sync::Mutex<Sites>,
    /// Set once the registry stops handing the breaker out: what a keyed
    /// name's table checks before it hands out a breaker it keeps.
    retired: std::sync::atomic::AtomicBool,
    /// Whether a shared-state backend holds this breaker's trials, see
    /// [`hold_trials`](Self::hold_trials). Read only on the open path.
    trials_held: std::sync::atomic::AtomicBool,
    /// Whether every transition into `Open` holds the trials, see
    /// [`hold_trials_on_open`](Self::hold_trials_on_open).
    hold_trials_on_open: std::sync::atomic::AtomicBool,
    /// Whether a shared-state backend lost its store and this breaker
    /// decides alone, see [`set_degraded`](Self::set_degraded).
    degraded: std::sync::atomic::AtomicBool,
    hooks: HookList,
    /// The registry's hooks, for breakers the registry created.
    shared_hooks: Option<Arc<HookList>>,
    /// Whether `hooks` or `shared_hooks` has any: the one load a rejected
    /// call pays to find out that nobody observes it.
    observed: std::sync::atomic::AtomicBool,
    /// What the metrics facade was last told about this breaker.
    #[cfg(feature = "metrics")]
    pub(crate) facade: crate::telemetry::facade::Published,
}

/// The call sites caching a breaker, and whether it was retired.
#[derive(Debug, Default)]
struct Sites {
    retired: bool,
    cells: Vec<&'static BreakerCell>,
}

/// What only transitions and reconfigurations touch, guarded by the
/// transition mutex: how long the next open period lasts, and the whole
/// configuration.
#[derive(Debug)]
struct Recovery {
    /// `recovery_timeout`, grown by `recovery_backoff` at each reopen.
    open_for: Backoff,
    jitter: Jitter,
    config: Config,
}

impl CircuitBreaker {
    /// Creates a closed breaker. Most code gets breakers from the
    /// [`registry`](crate::registry) instead, so health checks can see them.
    ///
    /// The name is kept for the life of the program, once per distinct
    /// name, so that rejections can carry it without reference counting:
    /// name breakers after dependencies, not after requests.
    ///
    /// ```
    /// use circuit_runtime::{CircuitBreaker, Config, State};
    /// let breaker = CircuitBreaker::new("cache", Config::default());
    /// assert_eq!(breaker.name(), "cache");
    /// assert_eq!(breaker.state(), State::Closed);
    /// ```
    pub fn new(name: impl Into<String>, config: Config) -> CircuitBreaker {
        Self::with_shared_hooks(name.into(), config, None)
    }

    pub(crate) fn with_shared_hooks(
        name: String,
        config: Config,
        shared_hooks: Option<Arc<HookList>>,
    ) -> CircuitBreaker {
        let timeline = Timeline::new(config.clock.clone());
        let seed = seed_from(&name);
        let windows = Windows::new(config.keeps_window().then(|| config.window()));
        CircuitBreaker {
            name: intern(name),
            tuning: Tuning::new(&config),
            timeline,
            state: AtomicU64::new(pack_state(0, State::Closed)),
            closed_failures: AtomicU64::new(0),
            trials: AtomicU64::new(0),
            running: AtomicU64::new(0),
            open_until: AtomicU64::new(0),
            entered_at: AtomicU64::new(0),
            last_failure_at: AtomicU64::new(0),
            windows,
            counters: CallCounters::new(),
            times_opened: AtomicU64::new(0),
            times_half_opened: AtomicU64::new(0),
            times_closed: AtomicU64::new(0),
            recovery: Mutex::new(Recovery {
                open_for: Backoff::new(
                    config.recovery_timeout(),
                    config.recovery_backoff(),
                    config.max_recovery_timeout(),
                ),
                jitter: Jitter::new(config.jitter(), seed),
                config,
            }),
            sites: std::sync::Mutex::default(),
            retired: std::sync::atomic::AtomicBool::new(false),
            trials_held: std::sync::atomic::AtomicBool::new(false),
            hold_trials_on_open: std::sync::atomic::AtomicBool::new(false),
            degraded: std::sync::atomic::AtomicBool::new(false),
            observed: std::sync::atomic::AtomicBool::new(
                shared_hooks
                    .as_deref()
                    .is_some_and(|hooks| !hooks.is_empty()),
            ),
            hooks: HookList::default(),
            shared_hooks,
            #[cfg(feature = "metrics")]
            facade: crate::telemetry::facade::Published::default(),
        }
    }

    /// The breaker's name.
    ///
    /// ```
    /// let breaker = circuit_runtime::CircuitBreaker::new("cache", Default::default());
    /// assert_eq!(breaker.name(), "cache");
    /// ```
    pub fn name(&self) -> &str {
        self.name.as_str()
    }

    /// Counts a retry attempt made through this breaker, and reports it:
    /// attempt number `attempt`, after `delay`.
    #[cold]
    pub(crate) fn count_retry(
        &self,
        attempt: u32,
        delay: std::time::Duration,
        category: Option<crate::retry::ErrorCategory>,
    ) {
        self.counters.add(Counter::RetryAttempt);
        if self.is_observed() {
            self.emit(&crate::Event::Retry(crate::RetryAttempt {
                name: self.static_name(),
                attempt,
                delay,
                category,
            }));
        }
    }

    /// Counts how a retried call through this breaker ended.
    #[inline]
    pub(crate) fn count_retried_call(&self, succeeded: bool, attempts: u32, budget_spent: bool) {
        self.counters
            .add(match (succeeded, attempts, budget_spent) {
                // The sync path counts this one in place of the plain
                // success; the async path here, after the plain success.
                (true, 1, _) => Counter::RetrySucceededFirstAlsoCounted,
                (true, _, _) => Counter::RetrySucceededLater,
                (false, _, true) => Counter::RetryBudgetExhausted,
                (false, 1, false) => Counter::RetryFailedFirst,
                (false, _, false) => Counter::RetryFailedLater,
            });
    }

    /// The name as interned, for the life of the program.
    pub(crate) fn static_name(&self) -> &'static str {
        self.name.as_str()
    }

    /// The breaker's configuration as it is now (see
    /// [`reconfigure`](Self::reconfigure)).
    ///
    /// ```
    /// let breaker = circuit_runtime::CircuitBreaker::new("cache", Default::default());
    /// assert_eq!(breaker.config().failure_threshold(), 5);
    /// ```
    pub fn config(&self) -> Config {
        crate::sync::lock(&self.recovery).config.clone()
    }

    /// The state a call arriving now would meet.
    ///
    /// An open breaker whose recovery timeout has elapsed reads `HalfOpen`:
    /// the next call is a trial. Reading changes nothing: the move to
    /// half-open, its hooks and its half-open timer happen when that call
    /// arrives, so an idle breaker is neither reported down for ever nor
    /// moved along by whoever watches it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use circuit_runtime::{CircuitBreaker, Config, ManualClock, State};
    ///
    /// let clock = ManualClock::new();
    /// let config = Config::builder().failure_threshold(1).clock(clock.clone()).build()?;
    /// let breaker = CircuitBreaker::new("cache", config);
    /// breaker.record_failure();
    /// assert_eq!(breaker.state(), State::Open);
    /// clock.advance(Duration::from_secs(60));
    /// assert_eq!(breaker.state(), State::HalfOpen, "the next call is a trial");
    /// assert_eq!(breaker.metrics().times_half_opened, 0, "reading moved nothing");
    /// # Ok::<(), circuit_runtime::ConfigError>(())
    /// ```
    pub fn state(&self) -> State {
        match self.recorded_state() {
            State::Open if self.nanos_left_open().is_none() && !self.trials_held() => {
                State::HalfOpen
            }
            state => state,
        }
    }

    /// Holds or releases the trials of this breaker, for the backends that
    /// share breaker state between processes (such as `circuit-redis`):
    /// while held, an open breaker whose open time is over stays open and
    /// rejects calls (with a `retry_after` of zero) instead of letting a
    /// trial through, so that one replica probes a recovered dependency,
    /// not all of them. A breaker's trials are not held unless a backend
    /// holds them.
    ///
    /// ```
    /// use std::time::Duration;
    /// use circuit_runtime::{CircuitBreaker, Config, ManualClock, State};
    ///
    /// let clock = ManualClock::new();
    /// let config = Config::builder().failure_threshold(1).clock(clock.clone()).build()?;
    /// let breaker = CircuitBreaker::new("db", config);
    /// breaker.record_failure();
    /// breaker.hold_trials(true);
    /// clock.advance(Duration::from_secs(60));
    /// assert!(breaker.try_acquire().is_err(), "another replica probes");
    /// assert_eq!(breaker.state(), State::Open);
    /// breaker.hold_trials(false);
    /// assert_eq!(breaker.try_acquire()?.admitted_in(), State::HalfOpen);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn hold_trials(&self, held: bool) {
        self.trials_held
            .store(held, std::sync::atomic::Ordering::Release);
    }

    /// Marks the breaker as deciding alone (`true`) because the backend
    /// that shares its state with other replicas (such as
    /// `circuit-redis`) cannot reach its store, or as sharing again
    /// (`false`), saying why. A change is reported as an
    /// [`Event::Degraded`](crate::Event::Degraded), shows in
    /// [snapshots](crate::Snapshot::degraded) and in
    /// [health](crate::Health::degraded_circuits), and is logged (feature
    /// `tracing`). The breaker works the same either way.
    ///
    /// ```
    /// use circuit_runtime::{CircuitBreaker, Event};
    ///
    /// let breaker = CircuitBreaker::new("db", Default::default());
    /// breaker.on_event(|event: &Event| {
    ///     if let Event::Degraded(change) = event {
    ///         assert!(change.degraded);
    ///         assert_eq!(change.reason.as_deref(), Some("Redis: connection refused"));
    ///     }
    /// });
    /// breaker.set_degraded(true, Some("Redis: connection refused"));
    /// assert!(breaker.is_degraded());
    /// ```
    pub fn set_degraded(&self, degraded: bool, reason: Option<&str>) {
        let was = self
            .degraded
            .swap(degraded, std::sync::atomic::Ordering::AcqRel);
        if was != degraded {
            self.emit(&crate::Event::Degraded(crate::events::DegradedChange {
                name: self.static_name(),
                degraded,
                reason: reason.map(str::to_owned),
            }));
        }
    }

    /// Whether the breaker decides alone because its shared state cannot
    /// be reached: see [`set_degraded`](Self::set_degraded).
    ///
    /// ```
    /// let breaker = circuit_runtime::CircuitBreaker::new("db", Default::default());
    /// assert!(!breaker.is_degraded());
    /// ```
    pub fn is_degraded(&self) -> bool {
        self.degraded.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Makes every transition of this breaker into `Open` hold its trials
    /// (`true`), or stops it and releases any hold (`false`); returns
    /// whether it did before. The hold is taken inside the transition, so
    /// no call between the opening and a backend's reaction can run a
    /// trial the backend did not grant: what a backend that grants one
    /// replica at a time its trials (such as `circuit-redis`) turns on for
    /// each breaker it shares, and off when it stops.
    ///
    /// ```
    /// use circuit_runtime::CircuitBreaker;
    /// let breaker = CircuitBreaker::new("db", circuit_runtime::Config::builder().failure_threshold(1).build()?);
    /// breaker.hold_trials_on_open(true);
    /// breaker.record_failure();
    /// assert!(breaker.trials_held());
    /// breaker.hold_trials_on_open(false);
    /// assert!(!breaker.trials_held(), "released");
    /// # Ok::<(), circuit_runtime::ConfigError>(())
    /// ```
    pub fn hold_trials_on_open(&self, on: bool) -> bool {
        let was = self
            .hold_trials_on_open
            .swap(on, std::sync::atomic::Ordering::AcqRel);
        if !on {
            self.hold_trials(false);
        }
        was
    }

    /// Whether transitions into `Open` hold the trials: see
    /// [`hold_trials_on_open`](Self::hold_trials_on_open).
    pub(crate) fn holds_trials_on_open(&self) -> bool {
        self.hold_trials_on_open
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// Whether a backend holds this breaker's trials: see
    /// [`hold_trials`](Self::hold_trials).
    ///
    /// ```
    /// let breaker = circuit_runtime::CircuitBreaker::new("db", Default::default());
    /// assert!(!breaker.trials_held());
    /// ```
    pub fn trials_held(&self) -> bool {
        self.trials_held.load(std::sync::atomic::Ordering::Acquire)
    }

    /// How long until the next trial: the time left of an open period,
    /// `None` in any other state (and once the open time is over).
    ///
    /// ```
    /// use circuit_runtime::CircuitBreaker;
    /// let breaker = CircuitBreaker::new("db", Default::default());
    /// assert_eq!(breaker.retry_after(), None);
    /// breaker.apply_remote(circuit_runtime::State::Open, None);
    /// assert!(breaker.retry_after().is_some());
    /// ```
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        (self.recorded_state() == State::Open)
            .then(|| self.nanos_left_open())
            .flatten()
            .map(std::time::Duration::from_nanos)
    }

    /// The state the state word holds, which an elapsed open period has
    /// not moved yet.
    pub(crate) fn recorded_state(&self) -> State {
        state_of(self.state.load(Ordering::Acquire))
    }

    /// Closes the breaker whatever its state, clearing its consecutive
    /// failures, trials and window (not its monotonic call counters). Calls
    /// in flight from before the reset no longer count.
    ///
    /// ```
    /// use circuit_runtime::{CircuitBreaker, State};
    /// let breaker = CircuitBreaker::new("feed", Default::default());
    /// breaker.force_open();
    /// breaker.reset();
    /// assert_eq!(breaker.state(), State::Closed);
    /// ```
    pub fn reset(&self) {
        self.command(State::Closed, TransitionCause::Reset);
    }

    /// Rejects every call until [`reset`](Self::reset), e.g. while a
    /// dependency is under maintenance.
    ///
    /// ```
    /// use circuit_runtime::{CircuitBreaker, State};
    /// let breaker = CircuitBreaker::new("feed", Default::default());
    /// breaker.force_open();
    /// assert!(breaker.try_acquire().is_err());
    /// ```
    pub fn force_open(&self) {
        self.command(State::ForcedOpen, TransitionCause::ForcedOpen);
    }

    /// Lets every call through until [`reset`](Self::reset), still counting
    /// outcomes in the metrics but never tripping.
    ///
    /// ```
    /// use circuit_runtime::{CircuitBreaker, Config, State};
    /// let breaker = CircuitBreaker::new("feed", Config::builder().failure_threshold(1).build()?);
    /// breaker.disable();
    /// breaker.record_failure();
    /// assert_eq!(breaker.state(), State::Disabled);
    /// assert_eq!(breaker.metrics().failed_calls, 1);
    /// # Ok::<(), circuit_runtime::ConfigError>(())
    /// ```
    pub fn disable(&self) {
        self.command(State::Disabled, TransitionCause::Disabled);
    }

    /// Applies a change that another replica made to this breaker's name,
    /// for the backends that share breaker state between processes (such
    /// as `circuit-redis`): the breaker moves to `to` at once, its
    /// observers see a transition whose cause is
    /// [`TransitionCause::Remote`], and such a transition is what a backend
    /// must not publish again. An `Open` lasts `open_for` (the time left of
    /// the other replica's open period), or this breaker's own recovery
    /// timeout without it.
    ///
    /// Returns the state it replaced.
    ///
    /// ```
    /// use std::time::Duration;
    /// use circuit_runtime::{CircuitBreaker, Config, ManualClock, State, TransitionCause};
    ///
    /// let clock = ManualClock::new();
    /// let breaker = CircuitBreaker::new("db", Config::builder().clock(clock.clone()).build()?);
    /// breaker.on_transition(|t| assert_eq!(t.cause, TransitionCause::Remote));
    /// breaker.apply_remote(State::Open, Some(Duration::from_secs(7)));
    /// assert_eq!(breaker.state(), State::Open);
    /// assert_eq!(breaker.retry_after(), Some(Duration::from_secs(7)));
    /// clock.advance(Duration::from_secs(7));
    /// assert!(breaker.try_acquire().is_ok(), "the other replica's open time is over");
    /// # Ok::<(), circuit_runtime::ConfigError>(())
    /// ```
    pub fn apply_remote(&self, to: State, open_for: Option<std::time::Duration>) -> State {
        let before = self.recorded_state();
        self.transition_for(None, to, TransitionCause::Remote, open_for);
        before
    }

    /// Applies a manual command; returns the state it replaced.
    pub(crate) fn command(&self, to: State, cause: TransitionCause) -> State {
        let before = self.recorded_state();
        self.transition(None, to, cause);
        before
    }

    /// The breaker's counters and current view.
    ///
    /// ```
    /// use circuit_runtime::CircuitBreaker;
    /// let breaker = CircuitBreaker::new("feed", Default::default());
    /// breaker.force_open();
    /// let _ = breaker.try_acquire();
    /// assert_eq!(breaker.metrics().rejected_calls, 1);
    /// assert_eq!(breaker.metrics().times_opened, 0, "forced open is not a trip");
    /// ```
    pub fn metrics(&self) -> Metrics {
        let word = self.state.load(Ordering::Acquire);
        let (tag, count) = tagged::unpack(self.closed_failures.load(Ordering::Acquire));
        let consecutive_failures =
            if state_of(word) == State::Closed && tag == tag_of(generation_of(word)) {
                count
            } else {
                0
            };
        let (trial_tag, trials) = tagged::unpack(self.trials.load(Ordering::Acquire));
        let trial_successes =
            if state_of(word) == State::HalfOpen && trial_tag == tag_of(generation_of(word)) {
                words::trial_fields(trials).0
            } else {
                0
            };
        let tally = self
            .windows
            .current()
            .map(|window| window.tally(self.timeline.now_nanos()));
        // First-attempt successes of `#[retry]` calls are counted apart,
        // in place of the plain success (see `Verdict::FirstRetrySuccess`).
        let successful_calls = self.counters.get(Counter::Successful)
            + self.counters.get(Counter::RetrySucceededFirst);
        let failed_calls = self.counters.get(Counter::Failed);
        let ignored_calls = self.counters.get(Counter::Ignored);
        let at = |nanos: u64| (nanos != 0).then(|| self.timeline.instant(nanos));
        Metrics {
            total_calls: successful_calls + failed_calls + ignored_calls,
            successful_calls,
            failed_calls,
            ignored_calls,
            rejected_calls: self.counters.get(Counter::Rejected),
            bulkhead_rejected: self.counters.get(Counter::BulkheadRejected),
            fallbacks_after_rejection: self.counters.get(Counter::FallbackAfterRejection),
            fallbacks_after_failure: self.counters.get(Counter::FallbackAfterFailure),
            retry_attempts: self.counters.get(Counter::RetryAttempt),
            retry_calls: self.counters.retry_calls(),
            slow_calls: self.counters.get(Counter::Slow),
            times_opened: self.times_opened.load(Ordering::Relaxed),
            times_half_opened: self.times_half_opened.load(Ordering::Relaxed),
            times_closed: self.times_closed.load(Ordering::Relaxed),
            consecutive_failures,
            trial_successes,
            failure_rate: tally.and_then(Tally::failure_rate),
            slow_call_rate: tally.and_then(Tally::slow_call_rate),
            last_failure_at: at(self.last_failure_at.load(Ordering::Relaxed)),
            last_transition_at: at(self.entered_at.load(Ordering::Acquire)),
        }
    }

    /// The window's failure and slow-call rates, once it holds
    /// `minimum_calls` outcomes and its rate rules judge them; `None`
    /// before that, or without a window.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) fn judged_rates(&self) -> Option<(f64, f64)> {
        let tally = self.windows.current()?.tally(self.timeline.now_nanos());
        if tally.calls < self.tuning.rate_rules_unchecked().minimum_calls {
            return None;
        }
        tally.failure_rate().zip(tally.slow_call_rate())
    }

    /// Marks the breaker as no longer the registry's for its name, and
    /// empties every call site cache that holds it.
    pub(crate) fn retire(&self) {
        crate::telemetry::retired(self);
        let mut sites = lock_std(&self.sites);
        sites.retired = true;
        self.retired
            .store(true, std::sync::atomic::Ordering::Release);
        for cell in sites.cells.drain(..) {
            cell.clear_if(self);
        }
    }

    /// Whether the registry stopped handing this breaker out for its name.
    #[inline]
    pub(crate) fn is_retired(&self) -> bool {
        self.retired.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Points `cell` at this breaker, unless it was retired. Under the
    /// same lock as [`retire`](Self::retire): a cell is either set before
    /// the retirement, and emptied by it, or not set at all.
    pub(crate) fn cache_in(&'static self, cell: &'static BreakerCell) -> bool {
        let mut sites = lock_std(&self.sites);
        if sites.retired {
            return false;
        }
        cell.set(self);
        if !sites.cells.iter().any(|kept| std::ptr::eq(*kept, cell)) {
            sites.cells.push(cell);
        }
        true
    }

    /// The current instant on this breaker's clock (the manual clock, if it
    /// has one).
    ///
    /// ```
    /// use std::time::Duration;
    /// use circuit_runtime::{CircuitBreaker, Config, ManualClock};
    /// let clock = ManualClock::new();
    /// let breaker = CircuitBreaker::new("feed", Config::builder().clock(clock.clone()).build()?);
    /// clock.advance(Duration::from_secs(3));
    /// assert_eq!(breaker.now(), clock.now());
    /// # Ok::<(), circuit_runtime::ConfigError>(())
    /// ```
    pub fn now(&self) -> Instant {
        self.timeline.instant(self.timeline.now_nanos())
    }
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("name", &self.name)
            .field("state", &self.state())
            .field("config", &self.config())
            .finish_non_exhaustive()
    }
}

/// A per-breaker seed, so breakers tripped together do not jitter alike.
fn seed_from(name: &str) -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(name)
}
