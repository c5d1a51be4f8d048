//! Breakers by name, for the whole program: what `#[circuit_breaker]` call
//! sites share, and what tests and health endpoints read.

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::breaker::CircuitBreaker;
use crate::config::Config;
use crate::events::{HookList, Transition, TransitionCause};
use crate::metrics::Metrics;
use crate::sync::{lock_std, read, write};
use crate::State;
use std::sync::{Arc, Mutex, RwLock};

/// The program's global registry, created on first use.
///
/// ```
/// use circuit_runtime::{registry, Config};
///
/// let breaker = registry().get_or_create("inventory", Config::default());
/// assert!(registry().names().contains(&"inventory".to_string()));
/// assert!(std::sync::Arc::ptr_eq(&breaker, &registry().get("inventory").unwrap()));
/// ```
pub fn registry() -> &'static Registry {
    static GLOBAL: OnceLock<Registry> = OnceLock::new();
    GLOBAL.get_or_init(Registry::new)
}

/// Named breakers. Entries are never removed, so a handle cached by a call
/// site stays the registry's breaker for the life of the program.
///
/// Most programs use the global [`registry()`]; a separate `Registry` is
/// useful to keep a test's breakers apart.
///
/// ```
/// use circuit_runtime::{Config, Registry, State};
///
/// let registry = Registry::new();
/// registry.get_or_create("a", Config::default()).force_open();
/// registry.get_or_create("b", Config::default());
/// assert_eq!(registry.open_circuits(), ["a"]);
/// assert_eq!(registry.reset_all(), 1);
/// assert!(registry.snapshots().iter().all(|s| s.state == State::Closed));
/// ```
#[derive(Default)]
pub struct Registry {
    breakers: RwLock<HashMap<String, Arc<CircuitBreaker>>>,
    hooks: Arc<HookList>,
    conflicts: Mutex<Vec<Conflict>>,
}

/// One breaker as a health endpoint or test sees it.
///
/// ```
/// let registry = circuit_runtime::Registry::new();
/// registry.get_or_create("mail", Default::default());
/// let snapshot = &registry.snapshots()[0];
/// assert_eq!((snapshot.name.as_str(), snapshot.state), ("mail", circuit_runtime::State::Closed));
/// assert_eq!(snapshot.metrics.total_calls, 0);
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Snapshot {
    /// The breaker's name.
    pub name: String,
    /// Its state.
    pub state: State,
    /// Its counters.
    pub metrics: Metrics,
    /// Its configuration.
    pub config: Config,
}

/// Two registrations of one name asked for different configurations. The
/// first one won; this records that the second was not honoured.
///
/// ```
/// use circuit_runtime::{Config, Registry};
///
/// let registry = Registry::new();
/// registry.get_or_create("db", Config::default());
/// let strict = Config::builder().failure_threshold(1).build()?;
/// let breaker = registry.get_or_create("db", strict.clone());
/// assert_eq!(breaker.config().failure_threshold(), 5, "the first registration wins");
///
/// let conflicts = registry.conflicts();
/// assert_eq!(conflicts.len(), 1);
/// assert_eq!(conflicts[0].name, "db");
/// assert_eq!(conflicts[0].requested, strict);
/// # Ok::<(), circuit_runtime::ConfigError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Conflict {
    /// The contested name.
    pub name: String,
    /// The configuration the breaker has: the first registration's.
    pub registered: Config,
    /// The configuration a later registration asked for.
    pub requested: Config,
}

impl Registry {
    /// An empty registry.
    ///
    /// ```
    /// assert!(circuit_runtime::Registry::new().names().is_empty());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// The breaker called `name`, created with `config` if it does not exist.
    ///
    /// The first registration of a name wins: a later call with another
    /// configuration gets the existing breaker unchanged, and the mismatch
    /// is recorded in [`conflicts`](Self::conflicts).
    ///
    /// ```
    /// use circuit_runtime::{registry, Config};
    /// let first = registry().get_or_create("geo", Config::default());
    /// let again = registry().get_or_create("geo", Config::default());
    /// assert!(std::sync::Arc::ptr_eq(&first, &again));
    /// ```
    pub fn get_or_create(&self, name: &str, config: Config) -> Arc<CircuitBreaker> {
        if let Some(existing) = self.get(name) {
            self.check_conflict(&existing, config);
            return existing;
        }
        let mut breakers = write(&self.breakers);
        if let Some(existing) = breakers.get(name) {
            let existing = Arc::clone(existing);
            drop(breakers);
            self.check_conflict(&existing, config);
            return existing;
        }
        let breaker = Arc::new(CircuitBreaker::with_shared_hooks(
            name.to_owned(),
            config,
            Some(Arc::clone(&self.hooks)),
        ));
        breakers.insert(name.to_owned(), Arc::clone(&breaker));
        breaker
    }

    fn check_conflict(&self, existing: &CircuitBreaker, requested: Config) {
        if *existing.config() == requested {
            return;
        }
        let conflict = Conflict {
            name: existing.name().to_owned(),
            registered: existing.config().clone(),
            requested,
        };
        let mut conflicts = lock_std(&self.conflicts);
        if !conflicts.contains(&conflict) {
            conflicts.push(conflict);
        }
    }

    /// The breaker called `name`, if one was registered.
    ///
    /// ```
    /// assert!(circuit_runtime::registry().get("never-registered").is_none());
    /// ```
    pub fn get(&self, name: &str) -> Option<Arc<CircuitBreaker>> {
        read(&self.breakers).get(name).cloned()
    }

    /// Every registered name, sorted.
    ///
    /// ```
    /// let registry = circuit_runtime::Registry::new();
    /// registry.get_or_create("b", Default::default());
    /// registry.get_or_create("a", Default::default());
    /// assert_eq!(registry.names(), ["a", "b"]);
    /// ```
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = read(&self.breakers).keys().cloned().collect();
        names.sort_unstable();
        names
    }

    /// Every breaker, sorted by name. The lock on the registry is released
    /// before any breaker is read.
    fn all(&self) -> Vec<Arc<CircuitBreaker>> {
        let mut breakers: Vec<Arc<CircuitBreaker>> =
            read(&self.breakers).values().cloned().collect();
        breakers.sort_unstable_by(|a, b| a.name().cmp(b.name()));
        breakers
    }

    /// The state and counters of every breaker, sorted by name.
    ///
    /// ```
    /// let registry = circuit_runtime::Registry::new();
    /// registry.get_or_create("mail", Default::default()).record_failure();
    /// assert_eq!(registry.snapshots()[0].metrics.failed_calls, 1);
    /// ```
    pub fn snapshots(&self) -> Vec<Snapshot> {
        self.all()
            .into_iter()
            .map(|breaker| Snapshot {
                name: breaker.name().to_owned(),
                state: breaker.state(),
                metrics: breaker.metrics(),
                config: breaker.config().clone(),
            })
            .collect()
    }

    /// The names of the breakers that are `Open` or `ForcedOpen`, sorted.
    ///
    /// ```
    /// let registry = circuit_runtime::Registry::new();
    /// registry.get_or_create("mail", Default::default()).force_open();
    /// assert_eq!(registry.open_circuits(), ["mail"]);
    /// ```
    pub fn open_circuits(&self) -> Vec<String> {
        self.all()
            .into_iter()
            .filter(|breaker| matches!(breaker.state(), State::Open | State::ForcedOpen))
            .map(|breaker| breaker.name().to_owned())
            .collect()
    }

    /// Resets every breaker (see [`CircuitBreaker::reset`]) and returns how
    /// many were not closed before.
    ///
    /// ```
    /// let registry = circuit_runtime::Registry::new();
    /// registry.get_or_create("a", Default::default()).force_open();
    /// registry.get_or_create("b", Default::default());
    /// assert_eq!(registry.reset_all(), 1);
    /// ```
    pub fn reset_all(&self) -> usize {
        self.all()
            .iter()
            .filter(|breaker| {
                breaker.command(State::Closed, TransitionCause::Reset) != State::Closed
            })
            .count()
    }

    /// Adds a hook that runs after every state change of every breaker of
    /// this registry, including breakers registered later. Like
    /// [`CircuitBreaker::on_transition`], it runs outside every lock.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// let registry = circuit_runtime::Registry::new();
    /// let log = Arc::new(Mutex::new(Vec::new()));
    /// let sink = Arc::clone(&log);
    /// registry.on_transition(move |t| sink.lock().unwrap().push(format!("{}: {} -> {}", t.name, t.from, t.to)));
    ///
    /// registry.get_or_create("mail", Default::default()).force_open();
    /// assert_eq!(*log.lock().unwrap(), ["mail: closed -> forced_open"]);
    /// ```
    pub fn on_transition(&self, hook: impl Fn(&Transition) + Send + Sync + 'static) {
        self.hooks.push(Arc::new(hook));
    }

    /// Every name registered twice with different configurations, in the
    /// order they were noticed, each distinct request once.
    ///
    /// ```
    /// assert!(circuit_runtime::Registry::new().conflicts().is_empty());
    /// ```
    pub fn conflicts(&self) -> Vec<Conflict> {
        lock_std(&self.conflicts).clone()
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("names", &self.names())
            .finish_non_exhaustive()
    }
}
