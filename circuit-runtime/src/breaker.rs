//! The state machine: one breaker, its states, and how calls and outcomes
//! move it between them.
//!
//! Everything a call touches is an atomic word:
//! - `state`: the state and a generation that every transition increments.
//!   A permit remembers the generation it was admitted in, and its outcome
//!   only counts while that generation is current (a late failure from
//!   before a recovery must not reopen the freshly closed breaker).
//! - `closed_failures` and `trials`: the counters of the current period,
//!   tagged with the low 32 bits of its generation. A transition never resets
//!   them; a word tagged with an older generation simply reads as zero. So
//!   counters cannot be reset "too late" over a newer period's counts.
//!
//! Transitions are rare and take `recovery`, a mutex that also holds the
//! backoff state: under it the transition re-checks that the state word is
//! still the one it judged, writes the new period's data, and only then
//! publishes the new state word. Hooks run after the mutex is released.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::clock::{saturating_nanos, Timeline};
use crate::config::Config;
use crate::error::{CallError, CircuitOpenError};
use crate::metrics::{CallCounters, Counter, Metrics};
use crate::permit::{Admission, Permit, Verdict};
use crate::sync::{lock, lock_std, AtomicU64, Mutex, Ordering};
use crate::transition::{HookList, Transition, TransitionCause};
use crate::window::{Outcome, Tally, Window};

/// Where a breaker stands.
///
/// ```
/// use circuit_runtime::State;
/// assert_eq!(State::HalfOpen.to_string(), "half_open");
/// assert!(State::ForcedOpen.rejects_calls());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// Calls run; failures are counted.
    Closed,
    /// Calls are rejected until the recovery timeout elapses.
    Open,
    /// A limited number of trial calls run to decide between closing and
    /// reopening.
    HalfOpen,
    /// Every call is rejected until [`CircuitBreaker::reset`].
    ForcedOpen,
    /// Every call runs and is counted, but nothing trips the breaker, until
    /// [`CircuitBreaker::reset`].
    Disabled,
}

impl State {
    /// The state's name in `snake_case`, as metrics and logs spell it.
    ///
    /// ```
    /// assert_eq!(circuit_runtime::State::ForcedOpen.as_str(), "forced_open");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::Open => "open",
            State::HalfOpen => "half_open",
            State::ForcedOpen => "forced_open",
            State::Disabled => "disabled",
        }
    }

    /// Whether a breaker in this state rejects calls (at least some of them,
    /// for `HalfOpen`): what a health endpoint reports as "degraded".
    ///
    /// ```
    /// use circuit_runtime::State;
    /// assert!(State::Open.rejects_calls());
    /// assert!(!State::Disabled.rejects_calls());
    /// ```
    pub const fn rejects_calls(self) -> bool {
        matches!(self, State::Open | State::HalfOpen | State::ForcedOpen)
    }

    const fn code(self) -> u64 {
        match self {
            State::Closed => 0,
            State::Open => 1,
            State::HalfOpen => 2,
            State::ForcedOpen => 3,
            State::Disabled => 4,
        }
    }

    const fn from_code(code: u64) -> State {
        match code {
            1 => State::Open,
            2 => State::HalfOpen,
            3 => State::ForcedOpen,
            4 => State::Disabled,
            _ => State::Closed,
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad` honours width and alignment, for tables of breakers.
        f.pad(self.as_str())
    }
}

/// The state word: `generation << STATE_BITS | state`.
const STATE_BITS: u32 = 3;

fn pack_state(generation: u64, state: State) -> u64 {
    generation << STATE_BITS | state.code()
}

fn state_of(word: u64) -> State {
    State::from_code(word & ((1 << STATE_BITS) - 1))
}

fn generation_of(word: u64) -> u64 {
    word >> STATE_BITS
}

/// The tag that period counters carry: the generation's low 32 bits.
#[allow(clippy::cast_possible_truncation)] // the truncation is the tag
fn tag_of(generation: u64) -> u32 {
    generation as u32
}

/// How a tagged counter word relates to a period.
enum Tagged {
    /// Written in this period: its count is current.
    Current,
    /// Written in an earlier period: its count reads as zero.
    Older,
    /// Written in a later period: whoever asks is stale.
    Newer,
}

fn compare_tag(word_tag: u32, tag: u32) -> Tagged {
    // Wrapping distance, so the comparison survives the tag wrapping around.
    #[allow(clippy::cast_possible_wrap)]
    match tag.wrapping_sub(word_tag) as i32 {
        0 => Tagged::Current,
        distance if distance > 0 => Tagged::Older,
        _ => Tagged::Newer,
    }
}

/// The trial word: `tag << 32 | successes << 16 | in_flight`.
fn pack_trials(tag: u32, successes: u32, in_flight: u32) -> u64 {
    u64::from(tag) << 32 | u64::from(successes) << 16 | u64::from(in_flight)
}

#[allow(clippy::cast_possible_truncation)] // fields of a packed word
fn unpack_trials(word: u64) -> (u32, u32, u32) {
    (
        (word >> 32) as u32,
        (word >> 16) as u32 & 0xFFFF,
        word as u32 & 0xFFFF,
    )
}

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
    /// Interned: see [`intern`].
    name: &'static str,
    config: Config,
    timeline: Timeline,
    state: AtomicU64,
    /// Consecutive failures of the current closed period: `tag << 32 | count`.
    closed_failures: AtomicU64,
    /// Trial calls of the current half-open period, see [`pack_trials`].
    trials: AtomicU64,
    /// When the current open period ends, in timeline nanoseconds.
    open_until: AtomicU64,
    /// When the current state was entered; 0 before the first transition.
    entered_at: AtomicU64,
    /// When the last failure was recorded; 0 for never.
    last_failure_at: AtomicU64,
    /// Kept only when a rate rule needs it.
    window: Option<Window>,
    counters: CallCounters,
    times_opened: AtomicU64,
    times_half_opened: AtomicU64,
    times_closed: AtomicU64,
    recovery: Mutex<Recovery>,
    hooks: HookList,
    /// The registry's hooks, for breakers the registry created.
    shared_hooks: Option<Arc<HookList>>,
}

/// What only transitions touch, guarded by the transition mutex.
#[derive(Debug)]
struct Recovery {
    /// The open time before jitter: `recovery_timeout`, grown by backoff.
    open_for: Duration,
    /// State of the jitter generator (splitmix64).
    seed: u64,
}

impl Recovery {
    fn jitter_factor(&mut self, jitter: f64) -> f64 {
        self.seed = self.seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        #[allow(clippy::cast_precision_loss)] // 53 random bits make a uniform f64
        let unit = (z >> 11) as f64 / (1u64 << 53) as f64;
        1.0 + jitter * (2.0 * unit - 1.0)
    }
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
        let window = config.keeps_window().then(|| Window::new(config.window()));
        CircuitBreaker {
            name: intern(name),
            timeline,
            state: AtomicU64::new(pack_state(0, State::Closed)),
            closed_failures: AtomicU64::new(0),
            trials: AtomicU64::new(0),
            open_until: AtomicU64::new(0),
            entered_at: AtomicU64::new(0),
            last_failure_at: AtomicU64::new(0),
            window,
            counters: CallCounters::new(),
            times_opened: AtomicU64::new(0),
            times_half_opened: AtomicU64::new(0),
            times_closed: AtomicU64::new(0),
            recovery: Mutex::new(Recovery {
                open_for: config.recovery_timeout(),
                seed,
            }),
            config,
            hooks: HookList::default(),
            shared_hooks,
        }
    }

    /// The breaker's name.
    ///
    /// ```
    /// let breaker = circuit_runtime::CircuitBreaker::new("cache", Default::default());
    /// assert_eq!(breaker.name(), "cache");
    /// ```
    pub fn name(&self) -> &str {
        self.name
    }

    /// The breaker's configuration.
    ///
    /// ```
    /// let breaker = circuit_runtime::CircuitBreaker::new("cache", Default::default());
    /// assert_eq!(breaker.config().failure_threshold(), 5);
    /// ```
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The current state.
    ///
    /// An open breaker whose recovery timeout has elapsed still reads
    /// `Open`: it moves to `HalfOpen` when the next call arrives, not on a
    /// timer.
    ///
    /// ```
    /// use circuit_runtime::{CircuitBreaker, State};
    /// let breaker = CircuitBreaker::new("cache", Default::default());
    /// breaker.disable();
    /// assert_eq!(breaker.state(), State::Disabled);
    /// ```
    pub fn state(&self) -> State {
        state_of(self.state.load(Ordering::Acquire))
    }

    /// Asks to make one call. On success, run the call and hand the permit
    /// its verdict; dropping the permit instead releases its trial slot and
    /// records nothing (or records a failure while the thread is panicking).
    ///
    /// # Errors
    ///
    /// [`CircuitOpenError`] when the breaker is open, forced open, or
    /// half-open with every trial slot taken.
    ///
    /// ```
    /// use circuit_runtime::{CircuitBreaker, Config};
    ///
    /// let breaker = CircuitBreaker::new("broker", Config::default());
    /// let permit = breaker.try_acquire()?;
    /// match publish() {
    ///     Ok(()) => permit.record_success(),
    ///     Err(_) => permit.record_failure(),
    /// }
    /// # fn publish() -> Result<(), ()> { Ok(()) }
    /// # Ok::<(), circuit_runtime::CircuitOpenError>(())
    /// ```
    #[inline]
    pub fn try_acquire(&self) -> Result<Permit<'_>, CircuitOpenError> {
        let word = self.state.load(Ordering::Acquire);
        match state_of(word) {
            State::Closed | State::Disabled => Ok(self.admit(word, false)),
            _ => self.try_acquire_slow(word),
        }
    }

    #[inline]
    fn admit(&self, word: u64, trial: bool) -> Permit<'_> {
        let started_at = if self.config.slow_call_duration().is_some() {
            self.timeline.now_nanos()
        } else {
            0
        };
        Permit::new(
            self,
            Admission {
                generation: generation_of(word),
                state: state_of(word),
                trial,
                started_at,
            },
        )
    }

    #[cold]
    fn try_acquire_slow(&self, mut word: u64) -> Result<Permit<'_>, CircuitOpenError> {
        loop {
            match state_of(word) {
                State::Closed | State::Disabled => return Ok(self.admit(word, false)),
                State::ForcedOpen => return Err(self.reject(State::ForcedOpen, None)),
                State::Open => match self.time_left_open() {
                    Ok(retry_after) => return Err(self.reject(State::Open, Some(retry_after))),
                    Err(now) => {
                        self.transition(
                            Some(word),
                            State::HalfOpen,
                            TransitionCause::RecoveryTimeoutElapsed,
                            now,
                        );
                    }
                },
                State::HalfOpen => {
                    let now = self.timeline.now_nanos();
                    let entered_at = self.entered_at.load(Ordering::Acquire);
                    let stuck_for = Duration::from_nanos(now.saturating_sub(entered_at));
                    if stuck_for >= self.config.half_open_timeout() {
                        self.transition(
                            Some(word),
                            State::Open,
                            TransitionCause::HalfOpenTimeout,
                            now,
                        );
                    } else if let Some(permit) = self.claim_trial(word)? {
                        return Ok(permit);
                    }
                }
            }
            word = self.state.load(Ordering::Acquire);
        }
    }

    /// Takes a trial slot of the half-open period `word`. `Ok(None)` means
    /// the period ended meanwhile and the caller should look again.
    fn claim_trial(&self, word: u64) -> Result<Option<Permit<'_>>, CircuitOpenError> {
        let tag = tag_of(generation_of(word));
        let max_in_flight = self.config.half_open_max_calls();
        let mut trials = self.trials.load(Ordering::Acquire);
        loop {
            let (trials_tag, successes, in_flight) = unpack_trials(trials);
            let (successes, in_flight) = match compare_tag(trials_tag, tag) {
                Tagged::Current => (successes, in_flight),
                Tagged::Older => (0, 0),
                Tagged::Newer => return Ok(None),
            };
            if in_flight >= max_in_flight {
                return Err(self.reject(State::HalfOpen, None));
            }
            let claimed = pack_trials(tag, successes, in_flight + 1);
            match self.trials.compare_exchange_weak(
                trials,
                claimed,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(actual) => trials = actual,
            }
        }
        let permit = self.admit(word, true);
        if self.state.load(Ordering::Acquire) == word {
            Ok(Some(permit))
        } else {
            // The period ended between reading the state and claiming the
            // slot: a call admitted now would run while the breaker is open.
            // Dropping the permit gives the slot back to the dead period.
            drop(permit);
            Ok(None)
        }
    }

    /// How long an open breaker stays open, or, once its recovery timeout
    /// has elapsed, `Err` with the time it was found elapsed.
    #[inline]
    fn time_left_open(&self) -> Result<Duration, u64> {
        let now = self.timeline.now_nanos();
        let until = self.open_until.load(Ordering::Acquire);
        if now < until {
            Ok(Duration::from_nanos(until - now))
        } else {
            Err(now)
        }
    }

    #[inline]
    fn reject(&self, state: State, retry_after: Option<Duration>) -> CircuitOpenError {
        self.counters.add(Counter::Rejected);
        CircuitOpenError::new(self.name, state, retry_after)
    }

    /// Applies a permit's verdict. Called exactly once per permit. Takes the
    /// admission by value: a reference pins it to the stack, and copying it
    /// there costs a store-forwarding stall on every call.
    #[inline]
    pub(crate) fn settle(&self, admission: Admission, verdict: Verdict) {
        let admission = &admission;
        let slow = admission.started_at != 0
            && matches!(
                verdict,
                Verdict::Success | Verdict::Failure | Verdict::Ignored
            )
            && self.is_slow(admission.started_at);
        match verdict {
            Verdict::Success => self.counters.add(Counter::Successful),
            Verdict::Failure => self.counters.add(Counter::Failed),
            Verdict::Ignored => self.counters.add(Counter::Ignored),
            Verdict::Released => {}
        }
        if slow {
            self.counters.add(Counter::Slow);
        }
        match (admission.state, verdict) {
            (_, Verdict::Failure) => self.on_failure(admission, slow),
            (State::Closed, Verdict::Success) => self.on_closed_success(admission, slow),
            (State::HalfOpen, Verdict::Success) => self.on_trial_success(admission),
            (State::HalfOpen, Verdict::Ignored | Verdict::Released) if admission.trial => {
                self.release_trial(admission.generation);
            }
            _ => {}
        }
    }

    #[cold]
    fn is_slow(&self, started_at: u64) -> bool {
        let elapsed = self.timeline.now_nanos().saturating_sub(started_at);
        self.config
            .slow_call_duration()
            .is_some_and(|slow| elapsed >= saturating_nanos(slow))
    }

    #[inline]
    fn on_closed_success(&self, admission: &Admission, slow: bool) {
        let failures = self.closed_failures.load(Ordering::Relaxed);
        // Reading first keeps the common case (no failures) free of writes
        // to a shared cache line.
        #[allow(clippy::cast_possible_truncation)]
        if failures as u32 != 0 && (failures >> 32) as u32 == tag_of(admission.generation) {
            let _ = self.closed_failures.compare_exchange(
                failures,
                u64::from(tag_of(admission.generation)) << 32,
                Ordering::AcqRel,
                Ordering::Relaxed,
            );
        }
        if self.window.is_some() {
            self.record_in_window(
                admission,
                Outcome {
                    failed: false,
                    slow,
                },
            );
        }
    }

    #[cold]
    fn on_failure(&self, admission: &Admission, slow: bool) {
        let now = self.timeline.now_nanos();
        self.last_failure_at.fetch_max(now, Ordering::Relaxed);
        match admission.state {
            State::Closed => {
                if self.count_closed_failure(admission.generation)
                    >= self.config.failure_threshold()
                {
                    self.transition(
                        Some(pack_state(admission.generation, State::Closed)),
                        State::Open,
                        TransitionCause::ConsecutiveFailures,
                        now,
                    );
                }
                // A no-op once the breaker has tripped: the window only
                // takes outcomes of the current closed period.
                self.record_in_window(admission, Outcome { failed: true, slow });
            }
            State::HalfOpen => {
                if admission.trial {
                    self.release_trial(admission.generation);
                }
                self.transition(
                    Some(pack_state(admission.generation, State::HalfOpen)),
                    State::Open,
                    TransitionCause::TrialFailed,
                    now,
                );
            }
            _ => {}
        }
    }

    /// Counts a failure against closed period `generation` and returns the
    /// period's count, or 0 when the period is over.
    fn count_closed_failure(&self, generation: u64) -> u32 {
        let tag = tag_of(generation);
        let mut word = self.closed_failures.load(Ordering::Acquire);
        loop {
            #[allow(clippy::cast_possible_truncation)]
            let count = match compare_tag((word >> 32) as u32, tag) {
                Tagged::Current => word as u32,
                Tagged::Older => 0,
                Tagged::Newer => return 0,
            };
            let counted = count.saturating_add(1);
            match self.closed_failures.compare_exchange_weak(
                word,
                u64::from(tag) << 32 | u64::from(counted),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return counted,
                Err(actual) => word = actual,
            }
        }
    }

    /// Adds a closed-period outcome to the window and trips the breaker if a
    /// rate rule says so.
    #[inline]
    fn record_in_window(&self, admission: &Admission, outcome: Outcome) {
        let Some(window) = &self.window else { return };
        let expected = pack_state(admission.generation, State::Closed);
        if self.state.load(Ordering::Relaxed) != expected {
            return;
        }
        let now = if window.needs_time() {
            self.timeline.now_nanos()
        } else {
            0
        };
        let tally = window.record(outcome, now);
        if tally.calls < u64::from(self.config.minimum_calls()) {
            return;
        }
        let reached = |rate: Option<f64>, threshold: Option<f64>| matches!((rate, threshold), (Some(rate), Some(threshold)) if rate >= threshold);
        let cause = if reached(tally.failure_rate(), self.config.failure_rate_threshold()) {
            TransitionCause::FailureRate
        } else if reached(
            tally.slow_call_rate(),
            self.config.slow_call_rate_threshold(),
        ) {
            TransitionCause::SlowCallRate
        } else {
            return;
        };
        let now = if now == 0 {
            self.timeline.now_nanos()
        } else {
            now
        };
        self.transition(Some(expected), State::Open, cause, now);
    }

    fn on_trial_success(&self, admission: &Admission) {
        let tag = tag_of(admission.generation);
        let mut trials = self.trials.load(Ordering::Acquire);
        let successes = loop {
            let (trials_tag, successes, in_flight) = unpack_trials(trials);
            let (successes, in_flight) = match compare_tag(trials_tag, tag) {
                Tagged::Current => (successes, in_flight),
                Tagged::Older => (0, 0),
                Tagged::Newer => return,
            };
            let in_flight = if admission.trial {
                in_flight.saturating_sub(1)
            } else {
                in_flight
            };
            let successes = (successes + 1).min(0xFFFF);
            match self.trials.compare_exchange_weak(
                trials,
                pack_trials(tag, successes, in_flight),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break successes,
                Err(actual) => trials = actual,
            }
        };
        if successes >= self.config.success_threshold() {
            self.transition(
                Some(pack_state(admission.generation, State::HalfOpen)),
                State::Closed,
                TransitionCause::TrialsSucceeded,
                self.timeline.now_nanos(),
            );
        }
    }

    /// Gives back a trial slot of half-open period `generation`, if that
    /// period's counters are still current.
    fn release_trial(&self, generation: u64) {
        let tag = tag_of(generation);
        let _ = self
            .trials
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |trials| {
                let (trials_tag, successes, in_flight) = unpack_trials(trials);
                match compare_tag(trials_tag, tag) {
                    Tagged::Current => {
                        Some(pack_trials(tag, successes, in_flight.saturating_sub(1)))
                    }
                    Tagged::Older | Tagged::Newer => None,
                }
            });
    }

    /// Moves the breaker to `to`. With `expected`, only if the state word is
    /// still exactly `expected` (the period the caller judged); without, a
    /// manual command that applies whatever the state. Returns whether this
    /// call made the change.
    fn transition(
        &self,
        expected: Option<u64>,
        to: State,
        cause: TransitionCause,
        now: u64,
    ) -> bool {
        let mut recovery = lock(&self.recovery);
        let current = self.state.load(Ordering::Acquire);
        if expected.is_some_and(|expected| expected != current) {
            return false;
        }
        let from = state_of(current);
        match to {
            State::Open => {
                if from == State::HalfOpen {
                    recovery.open_for =
                        saturating_mul(recovery.open_for, self.config.recovery_backoff())
                            .min(self.config.max_recovery_timeout());
                }
                let mut open_for = recovery.open_for;
                if self.config.jitter() > 0.0 {
                    open_for =
                        saturating_mul(open_for, recovery.jitter_factor(self.config.jitter()));
                }
                self.open_until.store(
                    now.saturating_add(saturating_nanos(open_for)),
                    Ordering::Release,
                );
                self.times_opened.fetch_add(1, Ordering::Relaxed);
            }
            State::Closed => {
                recovery.open_for = self.config.recovery_timeout();
                if let Some(window) = &self.window {
                    window.clear();
                }
                if from != State::Closed {
                    self.times_closed.fetch_add(1, Ordering::Relaxed);
                }
            }
            State::HalfOpen => {
                self.times_half_opened.fetch_add(1, Ordering::Relaxed);
            }
            State::ForcedOpen | State::Disabled => {}
        }
        self.entered_at.store(now, Ordering::Release);
        self.state.store(
            pack_state(generation_of(current) + 1, to),
            Ordering::Release,
        );
        drop(recovery);
        if from != to {
            self.emit(from, to, cause, now);
        }
        true
    }

    fn emit(&self, from: State, to: State, cause: TransitionCause, now: u64) {
        let shared = self
            .shared_hooks
            .as_deref()
            .filter(|hooks| !hooks.is_empty());
        if self.hooks.is_empty() && shared.is_none() {
            return;
        }
        let transition = Transition {
            name: self.name.to_owned(),
            from,
            to,
            at: self.timeline.instant(now),
            cause,
        };
        if let Some(shared) = shared {
            shared.run(&transition);
        }
        self.hooks.run(&transition);
    }

    /// Records a success observed outside [`call`](Self::call) or a permit,
    /// as if a call admitted now had succeeded.
    ///
    /// ```
    /// use circuit_runtime::{CircuitBreaker, Config};
    /// let breaker = CircuitBreaker::new("feed", Config::default());
    /// breaker.record_failure();
    /// breaker.record_success();
    /// assert_eq!(breaker.metrics().consecutive_failures, 0);
    /// ```
    pub fn record_success(&self) {
        self.record_now(Verdict::Success);
    }

    /// Records a failure observed outside [`call`](Self::call) or a permit,
    /// as if a call admitted now had failed: it counts toward tripping a
    /// closed breaker and reopens a half-open one.
    ///
    /// ```
    /// use circuit_runtime::{CircuitBreaker, Config, State};
    /// let breaker = CircuitBreaker::new("feed", Config::builder().failure_threshold(2).build()?);
    /// breaker.record_failure();
    /// breaker.record_failure();
    /// assert_eq!(breaker.state(), State::Open);
    /// # Ok::<(), circuit_runtime::ConfigError>(())
    /// ```
    pub fn record_failure(&self) {
        self.record_now(Verdict::Failure);
    }

    fn record_now(&self, verdict: Verdict) {
        let word = self.state.load(Ordering::Acquire);
        let admission = Admission {
            generation: generation_of(word),
            state: state_of(word),
            trial: false,
            started_at: 0,
        };
        self.settle(admission, verdict);
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

    /// Applies a manual command; returns the state it replaced.
    pub(crate) fn command(&self, to: State, cause: TransitionCause) -> State {
        let before = self.state();
        self.transition(None, to, cause, self.timeline.now_nanos());
        before
    }

    /// Adds a hook that runs after every state change of this breaker, with
    /// no lock of the breaker held: it may read or call the breaker. A
    /// panicking hook is contained and does not affect the breaker.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    /// use circuit_runtime::CircuitBreaker;
    ///
    /// let changes = Arc::new(AtomicUsize::new(0));
    /// let breaker = CircuitBreaker::new("feed", Default::default());
    /// let counter = Arc::clone(&changes);
    /// breaker.on_transition(move |_| { counter.fetch_add(1, Ordering::Relaxed); });
    /// breaker.force_open();
    /// breaker.reset();
    /// assert_eq!(changes.load(Ordering::Relaxed), 2);
    /// ```
    pub fn on_transition(&self, hook: impl Fn(&Transition) + Send + Sync + 'static) {
        self.hooks.push(Arc::new(hook));
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
        let failures = self.closed_failures.load(Ordering::Acquire);
        #[allow(clippy::cast_possible_truncation)]
        let consecutive_failures = if state_of(word) == State::Closed
            && (failures >> 32) as u32 == tag_of(generation_of(word))
        {
            failures as u32
        } else {
            0
        };
        let tally = self
            .window
            .as_ref()
            .map(|window| window.tally(self.timeline.now_nanos()));
        let successful_calls = self.counters.get(Counter::Successful);
        let failed_calls = self.counters.get(Counter::Failed);
        let ignored_calls = self.counters.get(Counter::Ignored);
        let at = |nanos: u64| (nanos != 0).then(|| self.timeline.instant(nanos));
        Metrics {
            total_calls: successful_calls + failed_calls + ignored_calls,
            successful_calls,
            failed_calls,
            ignored_calls,
            rejected_calls: self.counters.get(Counter::Rejected),
            slow_calls: self.counters.get(Counter::Slow),
            times_opened: self.times_opened.load(Ordering::Relaxed),
            times_half_opened: self.times_half_opened.load(Ordering::Relaxed),
            times_closed: self.times_closed.load(Ordering::Relaxed),
            consecutive_failures,
            failure_rate: tally.and_then(Tally::failure_rate),
            slow_call_rate: tally.and_then(Tally::slow_call_rate),
            last_failure_at: at(self.last_failure_at.load(Ordering::Relaxed)),
            last_transition_at: at(self.entered_at.load(Ordering::Acquire)),
        }
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

    /// Runs `f` through the breaker; every `Err` counts as a failure.
    ///
    /// A panic inside `f` counts as a failure and keeps unwinding.
    ///
    /// # Errors
    ///
    /// [`CallError::Rejected`] without running `f` when the breaker rejects
    /// the call, [`CallError::Failed`] with `f`'s error when it ran and failed.
    ///
    /// ```
    /// use circuit_runtime::{CircuitBreaker, Config};
    /// let breaker = CircuitBreaker::new("pricing", Config::default());
    /// let price = breaker.call(|| Ok::<_, std::io::Error>(42))?;
    /// assert_eq!(price, 42);
    /// # Ok::<(), circuit_runtime::CallError<std::io::Error>>(())
    /// ```
    #[inline]
    pub fn call<T, E>(&self, f: impl FnOnce() -> Result<T, E>) -> Result<T, CallError<E>> {
        self.call_with(|_| true, f)
    }

    /// Like [`call`](Self::call), but only errors for which `is_failure`
    /// returns `true` count as failures; the others are ignored (neither
    /// failure nor success), e.g. a "not found" that says nothing about the
    /// dependency's health.
    ///
    /// # Errors
    ///
    /// As [`call`](Self::call).
    ///
    /// ```
    /// use circuit_runtime::{CircuitBreaker, Config};
    /// let breaker = CircuitBreaker::new("users", Config::builder().failure_threshold(1).build()?);
    /// let not_found = |status: &u16| *status >= 500;
    /// let _ = breaker.call_with(not_found, || Err::<(), u16>(404));
    /// assert_eq!(breaker.metrics().ignored_calls, 1);
    /// assert_eq!(breaker.state(), circuit_runtime::State::Closed);
    /// # Ok::<(), circuit_runtime::ConfigError>(())
    /// ```
    #[inline]
    pub fn call_with<T, E>(
        &self,
        is_failure: impl Fn(&E) -> bool,
        f: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, CallError<E>> {
        // Not `try_acquire()?`: merged with the slow path's result, which
        // comes back through memory, the permit was copied through the stack
        // in pieces whose reloads stall store forwarding, which tripled the
        // closed path's overhead. Apart, the permit stays in registers.
        let word = self.state.load(Ordering::Acquire);
        if let State::Closed | State::Disabled = state_of(word) {
            return Self::run(self.admit(word, false), is_failure, f);
        }
        self.call_with_slow(word, is_failure, f)
    }

    #[cold]
    #[inline(never)]
    fn call_with_slow<T, E>(
        &self,
        word: u64,
        is_failure: impl Fn(&E) -> bool,
        f: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, CallError<E>> {
        // The common rejection, built straight into the caller's return
        // slot: through `try_acquire_slow`'s result the error was copied
        // twice more, each copy a store-forwarding stall.
        if state_of(word) == State::Open {
            if let Ok(retry_after) = self.time_left_open() {
                let rejection = self.reject(State::Open, Some(retry_after));
                return Err(CallError::Rejected(rejection));
            }
        }
        let permit = self.try_acquire_slow(word).map_err(CallError::Rejected)?;
        Self::run(permit, is_failure, f)
    }

    #[inline]
    fn run<T, E>(
        permit: Permit<'_>,
        is_failure: impl Fn(&E) -> bool,
        f: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, CallError<E>> {
        let result = f();
        permit.record_error(result.as_ref().err(), is_failure);
        result.map_err(CallError::Failed)
    }

    /// Runs the future `fut` through the breaker; every `Err` counts as a
    /// failure. Works on any executor: the breaker never spawns or sleeps.
    ///
    /// A panic while polling `fut` counts as a failure and keeps unwinding.
    /// Dropping the returned future before it finishes cancels the call: it
    /// gives back its trial slot and counts as nothing.
    ///
    /// # Errors
    ///
    /// As [`call`](Self::call).
    ///
    /// ```
    /// use circuit_runtime::{CircuitBreaker, Config};
    /// # futures::executor::block_on(async {
    /// let breaker = CircuitBreaker::new("quotes", Config::default());
    /// let quote = breaker.call_async(async { Ok::<_, std::io::Error>(7) }).await?;
    /// assert_eq!(quote, 7);
    /// # Ok::<(), circuit_runtime::CallError<std::io::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn call_async<T, E, F>(&self, fut: F) -> Result<T, CallError<E>>
    where
        F: Future<Output = Result<T, E>>,
    {
        self.call_async_with(|_: &E| true, fut).await
    }

    /// The async twin of [`call_with`](Self::call_with).
    ///
    /// # Errors
    ///
    /// As [`call`](Self::call).
    ///
    /// ```
    /// use circuit_runtime::{CircuitBreaker, Config};
    /// # futures::executor::block_on(async {
    /// let breaker = CircuitBreaker::new("users", Config::default());
    /// let result = breaker
    ///     .call_async_with(|status: &u16| *status >= 500, async { Err::<(), u16>(404) })
    ///     .await;
    /// assert!(result.is_err());
    /// assert_eq!(breaker.metrics().ignored_calls, 1);
    /// # });
    /// ```
    pub async fn call_async_with<T, E, F>(
        &self,
        is_failure: impl Fn(&E) -> bool,
        fut: F,
    ) -> Result<T, CallError<E>>
    where
        F: Future<Output = Result<T, E>>,
    {
        let permit = self.try_acquire().map_err(CallError::Rejected)?;
        // If polling `fut` panics, the unwinding drops this async fn's live
        // locals, `permit` among them, while the thread is still panicking:
        // the permit records a failure even when the executor catches the
        // panic (as tokio does). If the future is dropped instead, the
        // permit is dropped without a panic: a cancellation.
        let result = fut.await;
        permit.record_error(result.as_ref().err(), is_failure);
        result.map_err(CallError::Failed)
    }
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("name", &self.name)
            .field("state", &self.state())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// A per-breaker seed, so breakers tripped together do not jitter alike.
fn seed_from(name: &str) -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(name)
}

/// `duration * factor`, saturating at `Duration::MAX`. Not `mul_f64`: it
/// panics when the product overflows, which valid configurations reach (a
/// `recovery_backoff` of 1e20, or jitter above 1.0 on a `recovery_timeout`
/// near `Duration::MAX`), and the panic escaped from the caller's call in
/// the middle of a transition, leaving the breaker half-open.
fn saturating_mul(duration: Duration, factor: f64) -> Duration {
    Duration::try_from_secs_f64(duration.as_secs_f64() * factor).unwrap_or(Duration::MAX)
}

/// The `'static` copy of a breaker name, made once per distinct name for
/// the life of the program. Rejections carry the name, and a reference
/// count on it would cost every rejected call two locked instructions on a
/// cache line all rejecting threads share. Names are few and long-lived
/// (registry breakers live forever anyway), so the memory is bounded by the
/// distinct names a program uses.
fn intern(name: String) -> &'static str {
    static NAMES: std::sync::OnceLock<std::sync::Mutex<std::collections::HashSet<&'static str>>> =
        std::sync::OnceLock::new();
    let mut names = lock_std(NAMES.get_or_init(Default::default));
    if let Some(interned) = names.get(name.as_str()) {
        return interned;
    }
    let interned: &'static str = Box::leak(name.into_boxed_str());
    names.insert(interned);
    interned
}
