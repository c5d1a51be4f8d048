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
//! `call_async`. Around them: [`tuning`] holds the options calls read,
//! [`events`] the hooks every event leaves through, [`report`] what the
//! breaker tells (its state, metrics), [`control`] an operator's commands,
//! [`shared`] what a backend sharing state between replicas steers, and
//! [`sites`] the call sites that cache the breaker. This file holds the
//! breaker itself.

mod admit;
mod call;
mod control;
mod events;
pub(crate) mod permit;
mod record;
mod report;
mod shared;
mod sites;
mod state;
#[cfg(test)]
mod tests;
mod transition;
mod tuning;
mod words;

use std::fmt;
use std::sync::Arc;

use crate::cell::BreakerCell;
use crate::clock::Timeline;
use crate::config::Config;
use crate::events::HookList;
use crate::metrics::CallCounters;
use crate::names::{intern, Name};
use crate::policy::{Backoff, Jitter};
use crate::sync::{AtomicU64, Mutex};

pub(crate) use call::TimedInFlight;
pub use call::{CallFuture, TimedCallFuture};
pub(crate) use events::transitions_only;
pub use state::State;
use tuning::{Tuning, Windows};
use words::{AtomicStateWord, StateWord};

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
    state: AtomicStateWord,
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
            state: AtomicStateWord::new(StateWord::new(0, State::Closed)),
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
