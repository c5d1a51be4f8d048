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

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::clock::{saturating_nanos, Timeline};
use crate::config::Config;
use crate::error::{CallError, CircuitOpenError};
use crate::events::{HookList, Transition, TransitionCause};
use crate::metrics::{CallCounters, Counter, Metrics};
use crate::permit::{Admission, Permit, Verdict};
use crate::policy::{Backoff, Jitter};
use crate::sync::{lock, lock_std, AtomicU64, Mutex, Ordering};
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

/// The state word: `generation << STATE_BITS | state`. The generation has
/// 61 bits: at one transition per nanosecond it would take 73 years to
/// wrap, so within a process two periods never share a generation.
const STATE_BITS: u32 = 3;
const MAX_GENERATION: u64 = u64::MAX >> STATE_BITS;

fn pack_state(generation: u64, state: State) -> u64 {
    (generation & MAX_GENERATION) << STATE_BITS | state.code()
}

fn state_of(word: u64) -> State {
    State::from_code(word & ((1 << STATE_BITS) - 1))
}

fn generation_of(word: u64) -> u64 {
    word >> STATE_BITS
}

fn next_generation(generation: u64) -> u64 {
    (generation + 1) & MAX_GENERATION
}

/// The tag that period counters carry: the generation's low 32 bits.
///
/// A tag is only ever compared for equality, and only by a caller that has
/// just seen its own generation in the state word: every transition
/// rewrites the counter words with the new period's tag before it
/// publishes the new state, so a counter word whose tag differs belongs to
/// a later period, and one whose tag matches is this period's, unless a
/// thread stalls between those two reads for 2^32 transitions.
#[allow(clippy::cast_possible_truncation)] // the truncation is the tag
fn tag_of(generation: u64) -> u32 {
    generation as u32
}

/// The consecutive-failures word: `tag << 32 | count`.
fn pack_failures(tag: u32, count: u32) -> u64 {
    u64::from(tag) << 32 | u64::from(count)
}

#[allow(clippy::cast_possible_truncation)] // fields of a packed word
fn unpack_failures(word: u64) -> (u32, u32) {
    ((word >> 32) as u32, word as u32)
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

/// How many times one call looks at the state word before it gives up and
/// is rejected. Without other threads a call needs at most three looks (a
/// half-open period timing out, the open period after it elapsing at once,
/// the trial); each further look means another thread changed the state
/// meanwhile. With the one-move-each rule, this bounds the looks a call
/// takes and the transitions it makes, whatever the timeouts, hooks or
/// scheduling: a call never loops on transitions. (Not wait-free: a
/// transition takes the breaker's mutex, and a trial claim retries its
/// compare-and-swap while other claims win.)
const MAX_LOOKS: u32 = 4;

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

/// What only transitions touch, guarded by the transition mutex: how long
/// the next open period lasts.
#[derive(Debug)]
struct Recovery {
    /// `recovery_timeout`, grown by `recovery_backoff` at each reopen.
    open_for: Backoff,
    jitter: Jitter,
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
        let window = config
            .keeps_window()
            .then(|| Window::new(config.window(), tag_of(0)));
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
                open_for: Backoff::new(
                    config.recovery_timeout(),
                    config.recovery_backoff(),
                    config.max_recovery_timeout(),
                ),
                jitter: Jitter::new(config.jitter(), seed),
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
    /// records nothing, as a cancelled call (see [`Permit`]).
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
        // This call's own transitions: at most one of each, so that a
        // timeout shorter than a transition (a slow hook, a preempted
        // thread, nanosecond timeouts) cannot make one call flip the
        // breaker between open and half-open without end.
        let mut recovered = false;
        let mut timed_out = false;
        for _ in 1..MAX_LOOKS {
            match state_of(word) {
                State::Closed | State::Disabled => return Ok(self.admit(word, false)),
                State::ForcedOpen => return Err(self.reject(State::ForcedOpen, None)),
                State::Open => match self.time_left_open() {
                    Some(retry_after) => return Err(self.reject(State::Open, Some(retry_after))),
                    None if recovered => {
                        // Reopened and elapsed again since this call moved
                        // it to half-open: leave the next move to the next
                        // call.
                        return Err(self.reject(State::Open, Some(Duration::ZERO)));
                    }
                    None => {
                        recovered = true;
                        self.transition(
                            Some(word),
                            State::HalfOpen,
                            TransitionCause::RecoveryTimeoutElapsed,
                        );
                    }
                },
                State::HalfOpen => {
                    // A period this call opened is not judged by it: its
                    // clock started after this call read the time.
                    if !recovered && !timed_out && self.half_open_expired() {
                        timed_out = true;
                        self.transition(Some(word), State::Open, TransitionCause::HalfOpenTimeout);
                    } else if let Some(permit) = self.claim_trial(word)? {
                        return Ok(permit);
                    }
                }
            }
            word = self.state.load(Ordering::Acquire);
        }
        // Lost every race so far: answer from the state as it is now.
        match state_of(word) {
            State::Closed | State::Disabled => Ok(self.admit(word, false)),
            State::Open => {
                let retry_after = self.time_left_open().unwrap_or_default();
                Err(self.reject(State::Open, Some(retry_after)))
            }
            state => Err(self.reject(state, None)),
        }
    }

    /// Whether the current half-open period has run for `half_open_timeout`
    /// without a verdict.
    fn half_open_expired(&self) -> bool {
        let now = self.timeline.now_nanos();
        let entered_at = self.entered_at.load(Ordering::Acquire);
        Duration::from_nanos(now.saturating_sub(entered_at)) >= self.config.half_open_timeout()
    }

    /// Takes a trial slot of the half-open period `word`. `Ok(None)` means
    /// the period ended meanwhile and the caller should look again.
    ///
    /// No permit exists until the slot is confirmed: a permit is only ever
    /// made for a call that will run, so one that loses the race cannot
    /// record anything when it goes away.
    fn claim_trial(&self, word: u64) -> Result<Option<Permit<'_>>, CircuitOpenError> {
        let tag = tag_of(generation_of(word));
        let max_in_flight = self.config.half_open_max_calls();
        let mut trials = self.trials.load(Ordering::Acquire);
        loop {
            let (trials_tag, successes, in_flight) = unpack_trials(trials);
            if trials_tag != tag {
                return Ok(None);
            }
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
        if self.state.load(Ordering::Acquire) == word {
            Ok(Some(self.admit(word, true)))
        } else {
            // The period ended between reading the state and claiming the
            // slot: a call admitted now would run while the breaker is open.
            // The slot needs no giving back: the transition that ended the
            // period rewrote the trial word for the next one.
            Ok(None)
        }
    }

    /// How long an open breaker stays open, or `None` once its recovery
    /// timeout has elapsed.
    #[inline]
    fn time_left_open(&self) -> Option<Duration> {
        // The end first, then the time: read the other way round, an open
        // period that began in between would be measured from before it
        // began, and `retry_after` could exceed the open time.
        let until = self.open_until.load(Ordering::Acquire);
        let now = self.timeline.now_nanos();
        (now < until).then(|| Duration::from_nanos(until - now))
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

    /// Whether `generation` is the current period: the one check that tells
    /// a late outcome from a current one, on the full, never-repeating
    /// generation (counter tags only guard the instant after it).
    #[inline]
    fn is_current(&self, generation: u64) -> bool {
        generation_of(self.state.load(Ordering::Acquire)) == generation
    }

    #[inline]
    fn on_closed_success(&self, admission: &Admission, slow: bool) {
        let failures = self.closed_failures.load(Ordering::Relaxed);
        let (_, count) = unpack_failures(failures);
        // Reading first keeps the common case (no failures) free of writes
        // to a shared cache line.
        if count != 0 {
            self.clear_closed_failures(admission.generation, failures);
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
                    );
                }
                // A no-op once the breaker has tripped: the window only
                // takes outcomes of the current closed period.
                self.record_in_window(admission, Outcome { failed: true, slow });
            }
            State::HalfOpen => {
                // No slot given back first: the period ends here, and a slot
                // freed before the reopen would admit another trial into a
                // period whose trial just failed. The transition rewrites
                // the trial word for the next period anyway.
                self.transition(
                    Some(pack_state(admission.generation, State::HalfOpen)),
                    State::Open,
                    TransitionCause::TrialFailed,
                );
            }
            _ => {}
        }
    }

    /// Ends the run of consecutive failures of closed period `generation`.
    /// Retried until it holds: a failure counted between the load and the
    /// swap must not survive the success (whichever order the two are taken
    /// in, the run is at most one long afterwards).
    #[cold]
    fn clear_closed_failures(&self, generation: u64, mut word: u64) {
        let tag = tag_of(generation);
        if !self.is_current(generation) {
            return;
        }
        loop {
            let (word_tag, count) = unpack_failures(word);
            if word_tag != tag || count == 0 {
                return;
            }
            match self.closed_failures.compare_exchange_weak(
                word,
                pack_failures(tag, 0),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return,
                Err(actual) => word = actual,
            }
        }
    }

    /// Counts a failure against closed period `generation` and returns the
    /// period's count, or 0 when the period is over.
    fn count_closed_failure(&self, generation: u64) -> u32 {
        if !self.is_current(generation) {
            return 0;
        }
        let tag = tag_of(generation);
        let mut word = self.closed_failures.load(Ordering::Acquire);
        loop {
            let (word_tag, count) = unpack_failures(word);
            if word_tag != tag {
                return 0;
            }
            let counted = count.saturating_add(1);
            match self.closed_failures.compare_exchange_weak(
                word,
                pack_failures(tag, counted),
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
        if self.state.load(Ordering::Acquire) != expected {
            return;
        }
        let now = if window.needs_time() {
            self.timeline.now_nanos()
        } else {
            0
        };
        // `None` when the period ended since the check above: the window
        // belongs to the next period now.
        let Some(tally) = window.record(tag_of(admission.generation), outcome, now) else {
            return;
        };
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
        self.transition(Some(expected), State::Open, cause);
    }

    fn on_trial_success(&self, admission: &Admission) {
        if !self.is_current(admission.generation) {
            return;
        }
        let tag = tag_of(admission.generation);
        let mut trials = self.trials.load(Ordering::Acquire);
        let successes = loop {
            let (trials_tag, successes, in_flight) = unpack_trials(trials);
            if trials_tag != tag {
                return;
            }
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
            );
        }
    }

    /// Gives back a trial slot of half-open period `generation`, if that
    /// period is still current.
    fn release_trial(&self, generation: u64) {
        if !self.is_current(generation) {
            return;
        }
        let tag = tag_of(generation);
        let _ = self
            .trials
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |trials| {
                let (trials_tag, successes, in_flight) = unpack_trials(trials);
                (trials_tag == tag)
                    .then(|| pack_trials(tag, successes, in_flight.saturating_sub(1)))
            });
    }

    /// Moves the breaker to `to`. With `expected`, only if the state word is
    /// still exactly `expected` (the period the caller judged); without, a
    /// manual command that applies whatever the state. Returns whether this
    /// call made the change.
    ///
    /// The time is read here, under the lock: a time read before would date
    /// the new period in the past, by however long the caller took to get
    /// here, and a half-open period could then time out the moment it
    /// began.
    fn transition(&self, expected: Option<u64>, to: State, cause: TransitionCause) -> bool {
        let mut recovery = lock(&self.recovery);
        let current = self.state.load(Ordering::Acquire);
        if expected.is_some_and(|expected| expected != current) {
            return false;
        }
        let now = self.timeline.now_nanos();
        let from = state_of(current);
        let generation = next_generation(generation_of(current));
        // The new period's counters, written before its state word is
        // published: whoever sees the new generation sees them too.
        let tag = tag_of(generation);
        self.reset_period_counters(tag);
        match to {
            State::Open => {
                if from == State::HalfOpen {
                    recovery.open_for.grow();
                }
                let base = recovery.open_for.current();
                let open_for = recovery.jitter.spread(base);
                self.open_until.store(
                    now.saturating_add(saturating_nanos(open_for)),
                    Ordering::Release,
                );
                self.times_opened.fetch_add(1, Ordering::Relaxed);
            }
            State::Closed => {
                recovery.open_for.reset();
                if let Some(window) = &self.window {
                    window.begin_period(tag);
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
        self.state
            .store(pack_state(generation, to), Ordering::Release);
        drop(recovery);
        if from != to {
            self.emit(from, to, cause, now);
        }
        true
    }

    /// Swaps, not stores, for the reason the count window gives in its
    /// `begin_period`: ordered after every compare-and-swap before them in
    /// loom's model too.
    fn reset_period_counters(&self, tag: u32) {
        self.closed_failures
            .swap(pack_failures(tag, 0), Ordering::AcqRel);
        self.trials.swap(pack_trials(tag, 0, 0), Ordering::AcqRel);
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
        self.transition(None, to, cause);
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
        let (tag, count) = unpack_failures(self.closed_failures.load(Ordering::Acquire));
        let consecutive_failures =
            if state_of(word) == State::Closed && tag == tag_of(generation_of(word)) {
                count
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
    /// A panic inside `f` (or inside the classifier of
    /// [`call_with`](Self::call_with)) counts as a failure and keeps
    /// unwinding.
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
            if let Some(retry_after) = self.time_left_open() {
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
        permit
            .run(f, |result| result.as_ref().err(), is_failure)
            .map_err(CallError::Failed)
    }

    /// Runs the future `fut` through the breaker; every `Err` counts as a
    /// failure. Works on any executor: the breaker never spawns or sleeps.
    ///
    /// A panic while polling `fut` counts as a failure and keeps unwinding,
    /// whether the panic escapes or the executor catches it. Dropping the
    /// returned future before it finishes cancels the call: it gives back
    /// its trial slot and counts as nothing, even when the drop is part of
    /// another panic's unwinding (a sibling in `join!`, a bug elsewhere in
    /// the task), which says nothing about this dependency.
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
        permit
            .run_async(fut, |result| result.as_ref().err(), is_failure)
            .await
            .map_err(CallError::Failed)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ManualClock;

    impl CircuitBreaker {
        /// Puts the breaker where `generation - generation_now` transitions
        /// would have left it, in its current state: what a long-lived
        /// process reaches after days of flapping, without the days.
        fn fast_forward_to(&self, generation: u64) {
            let _recovery = lock(&self.recovery);
            let state = self.state();
            let tag = tag_of(generation);
            self.reset_period_counters(tag);
            if let (State::Closed, Some(window)) = (state, &self.window) {
                window.begin_period(tag);
            }
            self.state
                .store(pack_state(generation, state), Ordering::Release);
        }

        fn generation(&self) -> u64 {
            generation_of(self.state.load(Ordering::Acquire))
        }
    }

    fn breaker() -> (CircuitBreaker, ManualClock) {
        let clock = ManualClock::new();
        let config = Config::builder()
            .failure_threshold(3)
            .success_threshold(1)
            .half_open_max_calls(1)
            .recovery_timeout(Duration::from_secs(1))
            .failure_rate_threshold(1.0)
            .window_size(5)
            .minimum_calls(5)
            .clock(clock.clone())
            .build()
            .unwrap();
        (CircuitBreaker::new("wrap", config), clock)
    }

    /// One full cycle through every rule: consecutive failures trip it, a
    /// failed trial reopens it, a successful trial closes it, and a
    /// failure-rate window judges the closed period.
    fn cycle(breaker: &CircuitBreaker, clock: &ManualClock) {
        assert_eq!(breaker.state(), State::Closed);
        let stale = breaker.try_acquire().unwrap();
        breaker.record_failure();
        breaker.record_failure();
        assert_eq!(breaker.metrics().consecutive_failures, 2);
        breaker.record_failure();
        assert_eq!(breaker.state(), State::Open, "the consecutive rule trips");
        stale.record_failure();

        clock.advance(Duration::from_secs(1));
        let trial = breaker.try_acquire().expect("a trial after the timeout");
        assert_eq!(breaker.state(), State::HalfOpen);
        assert!(breaker.try_acquire().is_err(), "one slot");
        trial.record_failure();
        assert_eq!(breaker.state(), State::Open, "a failed trial reopens");

        clock.advance(Duration::from_secs(1));
        breaker.try_acquire().unwrap().record_success();
        assert_eq!(breaker.state(), State::Closed, "a good trial closes");

        for _ in 0..4 {
            breaker.record_failure();
            breaker.record_success();
        }
        assert_eq!(breaker.metrics().consecutive_failures, 0);
        assert_eq!(breaker.metrics().failure_rate, Some(0.4));
        breaker.reset();
    }

    #[test]
    fn every_rule_works_across_the_tag_wrapping_around() {
        // Each start is a few transitions short of a boundary: where the
        // counters' 32-bit tags wrap (and where a signed distance between
        // tags flips sign), and where the 61-bit generation itself wraps.
        let boundaries = [1 << 31, 1 << 32, MAX_GENERATION + 1];
        for boundary in boundaries {
            let (breaker, clock) = breaker();
            breaker.fast_forward_to(boundary - 6);
            for _ in 0..4 {
                cycle(&breaker, &clock);
            }
            assert!(
                breaker.generation().wrapping_sub(boundary) & MAX_GENERATION < 20,
                "crossed {boundary:#x}, now at {:#x}",
                breaker.generation()
            );
        }
    }

    /// A call admitted exactly 2^32 transitions ago carries the same
    /// counter tag as the current period: only the full generation tells
    /// them apart, and it does.
    #[test]
    fn an_outcome_from_2_pow_32_transitions_ago_is_still_stale() {
        let (breaker, _clock) = breaker();
        let closed = breaker.try_acquire().unwrap();
        let generation = breaker.generation();
        breaker.fast_forward_to(generation + (1 << 32));
        assert_eq!(breaker.state(), State::Closed);
        breaker.record_failure();
        breaker.record_failure();
        closed.record_failure();
        assert_eq!(
            breaker.state(),
            State::Closed,
            "the stale failure did not count"
        );
        assert_eq!(breaker.metrics().consecutive_failures, 2);
    }

    #[test]
    fn a_trial_from_2_pow_32_transitions_ago_neither_closes_nor_frees_a_slot() {
        let (breaker, clock) = breaker();
        breaker.force_open();
        breaker.reset();
        for _ in 0..3 {
            breaker.record_failure();
        }
        clock.advance(Duration::from_secs(1));
        let old_trial = breaker.try_acquire().unwrap();
        let generation = breaker.generation();
        breaker.fast_forward_to(generation + (1 << 32));
        let trial = breaker.try_acquire().expect("the new period's slot");
        old_trial.record_success();
        assert_eq!(
            breaker.state(),
            State::HalfOpen,
            "the stale success did not close it"
        );
        assert!(breaker.try_acquire().is_err(), "nor free the taken slot");
        drop(trial);
    }
}
