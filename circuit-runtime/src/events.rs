//! What a breaker tells the world: its state changes, as hooks see them,
//! and the lists of hooks that receive them.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use std::sync::{Arc, RwLock};

use crate::sync::{read, write};

use crate::State;

/// One state change of one breaker, handed to every transition hook.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use circuit_runtime::{CircuitBreaker, Config, State, Transition, TransitionCause};
///
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let breaker = CircuitBreaker::new("ledger", Config::builder().failure_threshold(1).build()?);
/// let log = Arc::clone(&seen);
/// breaker.on_transition(move |t: &Transition| log.lock().unwrap().push((t.from, t.to, t.cause)));
///
/// breaker.record_failure();
/// assert_eq!(
///     *seen.lock().unwrap(),
///     [(State::Closed, State::Open, TransitionCause::ConsecutiveFailures)]
/// );
/// # Ok::<(), circuit_runtime::ConfigError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Transition {
    /// The breaker's name.
    pub name: String,
    /// The state it left.
    pub from: State,
    /// The state it entered.
    pub to: State,
    /// When, on the breaker's clock.
    pub at: Instant,
    /// Which rule or command caused it.
    pub cause: TransitionCause,
}

/// Why a breaker changed state.
///
/// ```
/// use circuit_runtime::TransitionCause;
/// assert_eq!(TransitionCause::FailureRate.to_string(), "failure rate reached its threshold");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransitionCause {
    /// `failure_threshold` failures in a row.
    ConsecutiveFailures,
    /// The window's failure rate reached `failure_rate_threshold`.
    FailureRate,
    /// The window's slow-call rate reached `slow_call_rate_threshold`.
    SlowCallRate,
    /// The open time elapsed and a call arrived: trials may run.
    RecoveryTimeoutElapsed,
    /// `success_threshold` trials succeeded.
    TrialsSucceeded,
    /// A trial failed.
    TrialFailed,
    /// A half-open period reached no verdict within `half_open_timeout`.
    HalfOpenTimeout,
    /// [`CircuitBreaker::reset`](crate::CircuitBreaker::reset).
    Reset,
    /// [`CircuitBreaker::force_open`](crate::CircuitBreaker::force_open).
    ForcedOpen,
    /// [`CircuitBreaker::disable`](crate::CircuitBreaker::disable).
    Disabled,
}

impl TransitionCause {
    /// The cause's name in `snake_case`, as logs, metrics labels and
    /// serialized transitions spell it.
    ///
    /// ```
    /// use circuit_runtime::TransitionCause;
    /// assert_eq!(TransitionCause::RecoveryTimeoutElapsed.as_str(), "recovery_timeout_elapsed");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            TransitionCause::ConsecutiveFailures => "consecutive_failures",
            TransitionCause::FailureRate => "failure_rate",
            TransitionCause::SlowCallRate => "slow_call_rate",
            TransitionCause::RecoveryTimeoutElapsed => "recovery_timeout_elapsed",
            TransitionCause::TrialsSucceeded => "trials_succeeded",
            TransitionCause::TrialFailed => "trial_failed",
            TransitionCause::HalfOpenTimeout => "half_open_timeout",
            TransitionCause::Reset => "reset",
            TransitionCause::ForcedOpen => "forced_open",
            TransitionCause::Disabled => "disabled",
        }
    }
}

impl std::fmt::Display for TransitionCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TransitionCause::ConsecutiveFailures => "consecutive failures reached their threshold",
            TransitionCause::FailureRate => "failure rate reached its threshold",
            TransitionCause::SlowCallRate => "slow call rate reached its threshold",
            TransitionCause::RecoveryTimeoutElapsed => "recovery timeout elapsed",
            TransitionCause::TrialsSucceeded => "trial calls succeeded",
            TransitionCause::TrialFailed => "a trial call failed",
            TransitionCause::HalfOpenTimeout => "half-open period timed out without a verdict",
            TransitionCause::Reset => "reset",
            TransitionCause::ForcedOpen => "forced open",
            TransitionCause::Disabled => "disabled",
        })
    }
}

/// A configuration file was loaded, or failed to load (feature `toml`):
/// what [`Registry::on_reload`](crate::Registry::on_reload) hooks receive
/// after every load, by hand or by a watch.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use circuit_runtime::{Config, Registry};
///
/// let registry = Registry::new();
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let sink = Arc::clone(&seen);
/// registry.on_reload(move |reload| {
///     sink.lock().unwrap().push(match &reload.outcome {
///         Ok(changed) => format!("applied, changed {changed:?}"),
///         Err(err) => format!("kept the last good configuration: {err}"),
///     });
/// });
/// registry.get_or_create("db", Config::default());
/// registry.load_toml("[breakers.db]\nfailure_threshold = 3\n")?;
/// let _ = registry.load_toml("[breakers.db]\nfailure_threshold = 0\n");
/// assert_eq!(*seen.lock().unwrap(), [
///     "applied, changed [\"db\"]".to_owned(),
///     "kept the last good configuration: <string>:2:21: [breakers.db] `failure_threshold` must be at least 1, got 0: write e.g. `failure_threshold = 5`".to_owned(),
/// ]);
/// # Ok::<(), circuit_runtime::ConfigFileError>(())
/// ```
#[cfg(feature = "toml")]
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Reload {
    /// The file, or `None` for text given to
    /// [`load_toml`](crate::Registry::load_toml).
    pub file: Option<std::path::PathBuf>,
    /// The names of the running breakers it reconfigured, sorted; or why
    /// nothing in it was applied (the last good configuration stays).
    pub outcome: Result<Vec<String>, crate::ConfigFileError>,
}

/// A hook on events of type `E`, shared so a list can be copied cheaply.
pub(crate) type Hook<E = Transition> = Arc<dyn Fn(&E) + Send + Sync>;

/// Hooks that can be added at any time, including from inside a hook.
pub(crate) struct HookList<E = Transition> {
    hooks: RwLock<Vec<Hook<E>>>,
}

impl<E> Default for HookList<E> {
    fn default() -> Self {
        Self {
            hooks: RwLock::default(),
        }
    }
}

impl<E> HookList<E> {
    pub(crate) fn push(&self, hook: Hook<E>) {
        write(&self.hooks).push(hook);
    }

    /// Runs every hook on `event`. The list is copied first so no lock is
    /// held while user code runs: a hook may add hooks or use the breaker.
    /// A panicking hook is contained (the panic hook still reports it) so
    /// it cannot unwind through the caller's call or stop the hooks after
    /// it; what the event reports was committed before any hook ran.
    pub(crate) fn run(&self, event: &E) {
        let hooks = read(&self.hooks).clone();
        for hook in hooks {
            let _contained = catch_unwind(AssertUnwindSafe(|| hook(event)));
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        read(&self.hooks).is_empty()
    }
}

impl<E> std::fmt::Debug for HookList<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let count = read(&self.hooks).len();
        f.debug_struct("HookList").field("hooks", &count).finish()
    }
}
