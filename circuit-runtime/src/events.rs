//! What a breaker tells the world: its events (state changes, rejected
//! calls, fallbacks, slow calls, reconfigurations), and the lists of
//! observers that receive them.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::sync::{read, write};
use crate::{CircuitOpenError, Config, State};

/// Something a breaker did, as observers see it: what
/// [`CircuitBreaker::on_event`](crate::CircuitBreaker::on_event) and
/// [`Registry::on_event`](crate::Registry::on_event) hooks receive.
///
/// A call that succeeds in a closed breaker is no event: observing costs
/// that path nothing. The events of single calls (rejections, fallbacks,
/// slow calls) are built only while someone observes them (an `on_event`
/// hook, or with feature `tracing` a subscriber that wants them);
/// transitions and reconfigurations, rare by nature, always are, since
/// logs and metrics count them.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use circuit_runtime::{CircuitBreaker, Config, Event};
///
/// let breaker = CircuitBreaker::new("quotes", Config::builder().failure_threshold(1).build()?);
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let sink = Arc::clone(&seen);
/// breaker.on_event(move |event: &Event| sink.lock().unwrap().push(event.to_string()));
///
/// let _ = breaker.call(|| Err::<(), _>("timeout"));
/// let _ = breaker.call(|| Ok::<_, &str>(()));
/// assert_eq!(*seen.lock().unwrap(), [
///     "circuit breaker 'quotes' opened: consecutive failures reached their threshold",
///     "circuit breaker 'quotes' rejected a call: it is open; retry in 60.0s",
/// ]);
/// # Ok::<(), circuit_runtime::ConfigError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
// Built only while observed, and handed out by reference: a box around
// the largest variant would cost each reconfiguration an allocation for
// nothing.
#[allow(clippy::large_enum_variant)]
pub enum Event {
    /// The breaker changed state.
    Transition(Transition),
    /// The breaker rejected a call without running it: the same value the
    /// caller got, with the state and the time until the next trial.
    Rejection(CircuitOpenError),
    /// A fallback ran instead of the call's own result.
    Fallback(FallbackRun),
    /// A call took at least `slow_call_duration`.
    SlowCall(SlowCall),
    /// The breaker's options changed while it ran.
    Reconfiguration(Reconfiguration),
    /// A `#[retry]` call through the breaker is about to try again.
    Retry(RetryAttempt),
    /// A keyed name reached its bound on keys: keys beyond it share the
    /// overflow breaker this event comes from. Reported once per name.
    KeyOverflow(KeyOverflow),
    /// The breaker started or stopped deciding alone because the store it
    /// shares its state through could not be reached: see
    /// [`CircuitBreaker::set_degraded`](crate::CircuitBreaker::set_degraded).
    Degraded(DegradedChange),
}

impl Event {
    /// The name of the breaker the event happened to.
    ///
    /// ```
    /// use circuit_runtime::{CircuitBreaker, Event};
    /// let breaker = CircuitBreaker::new("mail", Default::default());
    /// breaker.on_event(|event: &Event| assert_eq!(event.name(), "mail"));
    /// breaker.force_open();
    /// ```
    pub fn name(&self) -> &'static str {
        match self {
            Event::Transition(transition) => transition.name,
            Event::Rejection(rejection) => rejection.name(),
            Event::Fallback(fallback) => fallback.name,
            Event::SlowCall(slow) => slow.name,
            Event::Reconfiguration(reconfiguration) => reconfiguration.name,
            Event::Retry(retry) => retry.name,
            Event::KeyOverflow(overflow) => overflow.name,
            Event::Degraded(change) => change.name,
        }
    }

    /// The event's kind in `snake_case`, as logs and serialized events
    /// spell it.
    ///
    /// ```
    /// use circuit_runtime::{CircuitBreaker, Event};
    /// let breaker = CircuitBreaker::new("mail", Default::default());
    /// breaker.on_event(|event: &Event| assert_eq!(event.kind(), "transition"));
    /// breaker.force_open();
    /// ```
    pub const fn kind(&self) -> &'static str {
        match self {
            Event::Transition(_) => "transition",
            Event::Rejection(_) => "rejection",
            Event::Fallback(_) => "fallback",
            Event::SlowCall(_) => "slow_call",
            Event::Reconfiguration(_) => "reconfiguration",
            Event::Retry(_) => "retry",
            Event::KeyOverflow(_) => "key_overflow",
            Event::Degraded(_) => "degraded",
        }
    }
}

impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = self.name();
        match self {
            Event::Transition(transition) => {
                let verb = match transition.to {
                    State::Closed => "closed",
                    State::Open => "opened",
                    State::HalfOpen => "half-opened",
                    State::ForcedOpen => "was forced open",
                    State::Disabled => "was disabled",
                };
                write!(f, "circuit breaker '{name}' {verb}: {}", transition.cause)
            }
            Event::Rejection(rejection) => {
                write!(f, "circuit breaker '{name}' rejected a call: it is ")?;
                rejection.write_condition(f)
            }
            Event::Fallback(fallback) => write!(
                f,
                "circuit breaker '{name}' ran its fallback: the call {}",
                fallback.reason
            ),
            Event::SlowCall(slow) => write!(
                f,
                "circuit breaker '{name}' saw a slow call: {:?}, at least {}",
                slow.duration,
                circuit_spec::duration::format(slow.threshold)
            ),
            Event::Retry(retry) => {
                write!(
                    f,
                    "circuit breaker '{name}' retries a call: attempt {} in {}",
                    retry.attempt,
                    circuit_spec::duration::format_millis_up(retry.delay)
                )?;
                match retry.category {
                    Some(category) => write!(f, " after a {category} error"),
                    None => Ok(()),
                }
            }
            Event::Reconfiguration(reconfiguration) => write!(
                f,
                "circuit breaker '{name}' was reconfigured: {} changed",
                reconfiguration.changed.join(", ")
            ),
            Event::KeyOverflow(overflow) => write!(
                f,
                "circuit breaker '{name}' takes the keys beyond the first {}, from key '{}' on",
                overflow.max_keys, overflow.key
            ),
            Event::Degraded(change) => {
                if change.degraded {
                    write!(f, "circuit breaker '{name}' decides alone: its shared state cannot be reached")?;
                } else {
                    write!(f, "circuit breaker '{name}' shares its state again")?;
                }
                match &change.reason {
                    Some(reason) => write!(f, " ({reason})"),
                    None => Ok(()),
                }
            }
        }
    }
}

/// A breaker started or stopped deciding alone: what [`Event::Degraded`]
/// carries.
///
/// ```
/// use circuit_runtime::{CircuitBreaker, Event};
/// let breaker = CircuitBreaker::new("db", Default::default());
/// breaker.on_event(|event: &Event| assert_eq!(
///     event.to_string(),
///     "circuit breaker 'db' decides alone: its shared state cannot be reached (timed out)",
/// ));
/// breaker.set_degraded(true, Some("timed out"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DegradedChange {
    /// The breaker's name.
    pub name: &'static str,
    /// Whether it now decides alone.
    pub degraded: bool,
    /// Why, as the backend says it.
    pub reason: Option<String>,
}

/// A keyed name reached its bound: what [`Event::KeyOverflow`] carries.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use circuit_runtime::{Event, KeyLimits, Registry};
///
/// let registry = Registry::new();
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let sink = Arc::clone(&seen);
/// registry.on_event(move |event: &Event| {
///     if let Event::KeyOverflow(overflow) = event {
///         sink.lock().unwrap().push((overflow.name, overflow.key.clone(), overflow.max_keys));
///     }
/// });
/// let tenants = registry.keyed_with("tenants", Default::default(), KeyLimits::new().max_keys(1));
/// tenants.get("a");
/// tenants.get("b");
/// tenants.get("c");
/// assert_eq!(*seen.lock().unwrap(), [("tenants/_overflow", "b".to_string(), 1)]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyOverflow {
    /// The overflow breaker's name, `<name>/_overflow`.
    pub name: &'static str,
    /// The first key that got no breaker of its own.
    pub key: String,
    /// The bound it met.
    pub max_keys: usize,
}

/// A fallback ran: what [`Event::Fallback`] carries.
///
/// ```
/// use circuit_runtime::{CircuitBreaker, Event, FallbackReason};
///
/// let breaker = CircuitBreaker::new("quotes", Default::default());
/// breaker.on_event(|event: &Event| {
///     if let Event::Fallback(fallback) = event {
///         assert_eq!(fallback.reason, FallbackReason::Rejected);
///     }
/// });
/// breaker.record_fallback(FallbackReason::Rejected);
/// assert_eq!(breaker.metrics().fallbacks_after_rejection, 1);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FallbackRun {
    /// The breaker's name.
    pub name: &'static str,
    /// Why the fallback ran.
    pub reason: FallbackReason,
}

/// Why a fallback ran.
///
/// ```
/// use circuit_runtime::FallbackReason;
/// assert_eq!(FallbackReason::Rejected.as_str(), "rejected");
/// assert_eq!(FallbackReason::Failed.to_string(), "failed");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FallbackReason {
    /// The breaker rejected the call.
    Rejected,
    /// The call ran and returned an error (`fallback_on = "any_error"`).
    Failed,
}

impl FallbackReason {
    /// The reason in `snake_case`, as logs and the
    /// `circuit_breaker_fallback_calls_total` metric's `reason` label spell
    /// it.
    ///
    /// ```
    /// assert_eq!(circuit_runtime::FallbackReason::Failed.as_str(), "failed");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            FallbackReason::Rejected => "rejected",
            FallbackReason::Failed => "failed",
        }
    }
}

impl std::fmt::Display for FallbackReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A call took at least `slow_call_duration`: what [`Event::SlowCall`]
/// carries. Only breakers with a `slow_call_duration` time their calls.
///
/// ```
/// use std::time::Duration;
/// use circuit_runtime::{CircuitBreaker, Config, Event, ManualClock};
///
/// let clock = ManualClock::new();
/// let config = Config::builder()
///     .slow_call_duration(Duration::from_secs(1))
///     .clock(clock.clone())
///     .build()?;
/// let breaker = CircuitBreaker::new("reports", config);
/// breaker.on_event(|event: &Event| {
///     if let Event::SlowCall(slow) = event {
///         assert_eq!((slow.duration, slow.threshold), (Duration::from_secs(3), Duration::from_secs(1)));
///     }
/// });
/// let _ = breaker.call(|| {
///     clock.advance(Duration::from_secs(3));
///     Ok::<_, ()>(())
/// });
/// assert_eq!(breaker.metrics().slow_calls, 1);
/// # Ok::<(), circuit_runtime::ConfigError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SlowCall {
    /// The breaker's name.
    pub name: &'static str,
    /// How long the call took, on the breaker's clock.
    pub duration: Duration,
    /// The `slow_call_duration` it reached.
    pub threshold: Duration,
}

/// A retried call is about to make another attempt through the breaker:
/// what [`Event::Retry`] carries.
///
/// ```
/// use circuit_runtime::{circuit_breaker, registry, retry, Event, CircuitOpenError};
///
/// #[derive(Debug)]
/// struct Flaky;
/// impl From<CircuitOpenError> for Flaky {
///     fn from(_: CircuitOpenError) -> Self { Flaky }
/// }
///
/// #[retry(max_retries = 1, base_delay = "0s")]
/// #[circuit_breaker(name = "docs.retry_event")]
/// fn flaky() -> Result<(), Flaky> { Err(Flaky) }
///
/// registry().on_event(|event: &Event| {
///     if let Event::Retry(retry) = event {
///         assert_eq!((retry.name, retry.attempt), ("docs.retry_event", 2));
///     }
/// });
/// assert!(flaky().is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryAttempt {
    /// The breaker's name.
    pub name: &'static str,
    /// The number of the attempt about to be made: 2 for the first retry.
    pub attempt: u32,
    /// The wait before it.
    pub delay: Duration,
    /// The category of the error that failed the last attempt, when the
    /// error classifies itself.
    pub category: Option<crate::retry::ErrorCategory>,
}

/// A breaker's options changed while it ran: what
/// [`Event::Reconfiguration`] carries, after
/// [`CircuitBreaker::reconfigure`](crate::CircuitBreaker::reconfigure),
/// [`Registry::configure`](crate::Registry::configure) or a configuration
/// file's load changed something.
///
/// ```
/// use circuit_runtime::{CircuitBreaker, Config, Event};
///
/// let breaker = CircuitBreaker::new("db", Config::default());
/// breaker.on_event(|event: &Event| {
///     if let Event::Reconfiguration(change) = event {
///         assert_eq!(change.changed, ["failure_threshold"]);
///         assert_eq!(change.config.failure_threshold(), 2);
///     }
/// });
/// breaker.reconfigure(Config::builder().failure_threshold(2).build()?);
/// # Ok::<(), circuit_runtime::ConfigError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Reconfiguration {
    /// The breaker's name.
    pub name: &'static str,
    /// The options whose values changed, in the option table's order.
    pub changed: Vec<&'static str>,
    /// The configuration the breaker runs with now.
    pub config: Config,
}

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
    pub name: &'static str,
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
    /// Another replica's change to a breaker whose state replicas share,
    /// applied with [`CircuitBreaker::apply_remote`](crate::CircuitBreaker::apply_remote).
    Remote,
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
            TransitionCause::Remote => "remote",
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
            TransitionCause::Remote => "changed by another replica",
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
pub(crate) type Hook<E = Event> = Arc<dyn Fn(&E) + Send + Sync>;

/// Hooks that can be added at any time, including from inside a hook.
pub(crate) struct HookList<E = Event> {
    /// Copied on write: an event takes the current list with one reference
    /// count, not a copy of it, and runs it with no lock held.
    hooks: RwLock<Arc<[Hook<E>]>>,
    /// Whether `hooks` has any: read without the lock, so a list nobody
    /// hooked costs the path that would report to it one load.
    any: AtomicBool,
}

impl<E> Default for HookList<E> {
    fn default() -> Self {
        Self {
            hooks: RwLock::new(Arc::new([])),
            any: AtomicBool::new(false),
        }
    }
}

impl<E> HookList<E> {
    pub(crate) fn push(&self, hook: Hook<E>) {
        let mut hooks = write(&self.hooks);
        *hooks = hooks.iter().cloned().chain([hook]).collect();
        self.any.store(true, Ordering::Release);
    }

    /// Runs every hook on `event`. The list is taken first so no lock is
    /// held while user code runs: a hook may add hooks or use the breaker.
    /// A panicking hook is contained (the panic hook still reports it) so
    /// it cannot unwind through the caller's call or stop the hooks after
    /// it; what the event reports was committed before any hook ran.
    ///
    /// An event a hook causes (by calling a breaker from inside it) reaches
    /// the hooks too, down to [`MAX_HOOK_DEPTH`] hooks running inside one
    /// another on a thread: deeper, it is not handed to hooks, so a hook
    /// that calls a breaker on each of its rejections cannot call itself
    /// without end.
    pub(crate) fn run(&self, event: &E) {
        if self.is_empty() {
            return;
        }
        let Some(_depth) = HookDepth::enter() else {
            return;
        };
        let hooks = Arc::clone(&read(&self.hooks));
        for hook in hooks.iter() {
            let _contained = catch_unwind(AssertUnwindSafe(|| hook(event)));
        }
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        !self.any.load(Ordering::Acquire)
    }
}

/// How many hooks may run inside one another on one thread.
pub(crate) const MAX_HOOK_DEPTH: u32 = 4;

/// One more hook running on this thread, until dropped.
struct HookDepth;

thread_local! {
    static HOOK_DEPTH: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

impl HookDepth {
    fn enter() -> Option<HookDepth> {
        HOOK_DEPTH
            .try_with(|depth| {
                (depth.get() < MAX_HOOK_DEPTH).then(|| {
                    depth.set(depth.get() + 1);
                    HookDepth
                })
            })
            .ok()
            .flatten()
    }
}

impl Drop for HookDepth {
    fn drop(&mut self) {
        let _ = HOOK_DEPTH.try_with(|depth| depth.set(depth.get() - 1));
    }
}

impl<E> std::fmt::Debug for HookList<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let count = read(&self.hooks).len();
        f.debug_struct("HookList")
            .field("hooks", &count)
            .finish_non_exhaustive()
    }
}
