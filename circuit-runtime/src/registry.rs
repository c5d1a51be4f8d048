//! Breakers by name, for the whole program: what `#[circuit_breaker]` call
//! sites share, and what tests and health endpoints read.

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::breaker::CircuitBreaker;
use crate::config::{Config, FileConfig};
use crate::events::{Event, HookList, Transition, TransitionCause};
use crate::keyed::{member_name, Family, KeyLimits, KeyedBreakers};
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

/// Named breakers, and the configuration each name gets.
///
/// A name's configuration comes from code (the first
/// [`get_or_create`](Self::get_or_create), which is what a
/// `#[circuit_breaker]` call site does) unless it was
/// [`configure`](Self::configure)d, which wins whenever it happens: before
/// the first call the breaker is built with it, after it the running
/// breaker is reconfigured in place.
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
    names: RwLock<Names>,
    hooks: Arc<HookList>,
    #[cfg(feature = "toml")]
    reload_hooks: HookList<crate::Reload>,
    conflicts: Mutex<Vec<Conflict>>,
}

/// Every name the registry knows, and the configuration file's layer.
#[derive(Default)]
struct Names {
    entries: HashMap<String, Entry>,
    /// The keyed names, whose keys' breakers are entries too.
    families: HashMap<String, Arc<Family>>,
    /// The last configuration file loaded; empty without one.
    file: FileConfig,
}

/// One name: its breaker, once something used it, and where its
/// configuration comes from. A keyed name has an entry without a breaker,
/// which holds what its keys' breakers are configured from.
#[derive(Default)]
struct Entry {
    breaker: Option<Arc<CircuitBreaker>>,
    /// What code asked for first.
    requested: Option<Config>,
    /// What [`Registry::configure`] set: it wins over code.
    configured: Option<Config>,
    /// The keyed name this is a key's breaker of.
    family: Option<Arc<str>>,
}

impl Names {
    /// The configuration the breaker called `name` runs with: what
    /// `configure` set for it, else for its keyed name; else the file's
    /// options (its own table over its keyed name's) over what code asked
    /// for.
    fn config_of(&self, name: &str) -> Config {
        let Some(entry) = self.entries.get(name) else {
            return Config::default();
        };
        if let Some(configured) = &entry.configured {
            return configured.clone();
        }
        let Some(family) = &entry.family else {
            let code = entry.requested.clone().unwrap_or_default();
            return self.file.config_for(name, None, &code);
        };
        let family_entry = self.entries.get(&**family);
        if let Some(configured) = family_entry.and_then(|entry| entry.configured.as_ref()) {
            return configured.clone();
        }
        let code = family_entry
            .and_then(|entry| entry.requested.clone())
            .or_else(|| entry.requested.clone())
            .unwrap_or_default();
        self.file.config_for(name, Some(family), &code)
    }
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
    /// How long until its next trial, while it is open.
    pub retry_after: Option<std::time::Duration>,
    /// Whether it decides alone because its shared state cannot be
    /// reached (see [`CircuitBreaker::set_degraded`]).
    pub degraded: bool,
}

/// Whether the program's dependencies are reachable, as its breakers see
/// them: the body of a `/health/circuits` endpoint.
///
/// ```
/// use circuit_runtime::{Config, Registry};
///
/// let registry = Registry::new();
/// registry.get_or_create("payments", Config::default()).force_open();
/// registry.get_or_create("mail", Config::default());
/// let health = registry.health();
/// assert!(!health.healthy);
/// assert_eq!(health.open_circuits, ["payments"]);
/// assert_eq!(health.circuits.len(), 2);
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Health {
    /// No breaker is open or forced open.
    pub healthy: bool,
    /// The names of the breakers that are, sorted.
    pub open_circuits: Vec<String>,
    /// The names of the breakers that decide alone because their shared
    /// state cannot be reached, sorted. They do not make the program
    /// unhealthy: each still protects its dependency.
    pub degraded_circuits: Vec<String>,
    /// Every breaker, sorted by name.
    pub circuits: Vec<Snapshot>,
}

/// Two registrations of one name in code asked for different options. The
/// first one is the name's configuration (unless it was
/// [`configure`](Registry::configure)d); this records that the second was
/// not honoured. Clocks are not options: a test's manual clock is no
/// conflict.
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
/// assert_eq!(conflicts[0].differing, ["failure_threshold"]);
/// # Ok::<(), circuit_runtime::ConfigError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Conflict {
    /// The contested name.
    pub name: String,
    /// The configuration the first registration asked for.
    pub registered: Config,
    /// The configuration a later registration asked for.
    pub requested: Config,
    /// The options whose values differ, in the option table's order.
    pub differing: Vec<&'static str>,
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

    /// The breaker called `name`, created if it does not exist: with the
    /// name's [configured](Self::configure) configuration if it has one,
    /// else with `config`.
    ///
    /// The first registration of a name in code wins: a later call with
    /// other options gets the existing breaker unchanged, and the mismatch
    /// is recorded in [`conflicts`](Self::conflicts).
    ///
    /// ```
    /// use circuit_runtime::{registry, Config};
    /// let first = registry().get_or_create("geo", Config::default());
    /// let again = registry().get_or_create("geo", Config::default());
    /// assert!(std::sync::Arc::ptr_eq(&first, &again));
    /// ```
    pub fn get_or_create(&self, name: &str, config: Config) -> Arc<CircuitBreaker> {
        {
            let names = read(&self.names);
            if let Some(entry) = names.entries.get(name) {
                if let Some(breaker) = &entry.breaker {
                    let breaker = Arc::clone(breaker);
                    let conflict = Self::conflict(name, entry, &config);
                    drop(names);
                    self.record(conflict);
                    return breaker;
                }
            }
        }
        let mut guard = write(&self.names);
        let names = &mut *guard;
        let entry = names.entries.entry(name.to_owned()).or_default();
        let conflict = Self::conflict(name, entry, &config);
        if entry.requested.is_none() {
            entry.requested = Some(config);
        }
        let breaker = self.breaker_of(names, name);
        drop(guard);
        self.record(conflict);
        breaker
    }

    /// The breaker of the entry `name`, built now if it has none.
    fn breaker_of(&self, names: &mut Names, name: &str) -> Arc<CircuitBreaker> {
        if let Some(breaker) = names
            .entries
            .get(name)
            .and_then(|entry| entry.breaker.clone())
        {
            return breaker;
        }
        let breaker = self.new_breaker(name, names.config_of(name));
        if let Some(entry) = names.entries.get_mut(name) {
            entry.breaker = Some(Arc::clone(&breaker));
        }
        breaker
    }

    /// The breakers of the keyed name `name`, one per key: see
    /// [`KeyedBreakers`]. Each key's breaker is built with `config` unless
    /// the name or the key's own name was [configured](Self::configure) or
    /// set in a configuration file. At most [`DEFAULT_MAX_KEYS`] keys get
    /// a breaker of their own; [`keyed_with`](Self::keyed_with) sets
    /// another bound.
    ///
    /// Every call with the same name shares one table of breakers; the
    /// first call's `config` and limits are the ones used, and a later
    /// `config` with other options is recorded in
    /// [`conflicts`](Self::conflicts), as for
    /// [`get_or_create`](Self::get_or_create).
    ///
    /// [`DEFAULT_MAX_KEYS`]: crate::DEFAULT_MAX_KEYS
    ///
    /// ```
    /// use circuit_runtime::{registry, Config};
    ///
    /// let topics = registry().keyed("kafka-topic", Config::default());
    /// let orders = topics.get("orders");
    /// assert_eq!(orders.name(), "kafka-topic/orders");
    /// assert!(std::sync::Arc::ptr_eq(&orders, &registry().get("kafka-topic/orders").unwrap()));
    /// ```
    pub fn keyed(&self, name: &str, config: Config) -> KeyedBreakers<'_> {
        self.keyed_with(name, config, KeyLimits::default())
    }

    /// [`keyed`](Self::keyed), with the bounds `limits`.
    ///
    /// ```
    /// use circuit_runtime::{Config, KeyLimits, Registry};
    ///
    /// let registry = Registry::new();
    /// let tenants = registry.keyed_with("tenants", Config::default(), KeyLimits::new().max_keys(2));
    /// tenants.get("a");
    /// tenants.get("b");
    /// assert_eq!(tenants.get("c").name(), "tenants/_overflow");
    /// ```
    pub fn keyed_with(&self, name: &str, config: Config, limits: KeyLimits) -> KeyedBreakers<'_> {
        {
            let names = read(&self.names);
            if let Some(family) = names.families.get(name) {
                let family = Arc::clone(family);
                let conflict = names
                    .entries
                    .get(name)
                    .and_then(|entry| Self::conflict(name, entry, &config));
                drop(names);
                self.record(conflict);
                return KeyedBreakers::new(self, family);
            }
        }
        let mut guard = write(&self.names);
        let names = &mut *guard;
        let entry = names.entries.entry(name.to_owned()).or_default();
        let conflict = Self::conflict(name, entry, &config);
        if entry.requested.is_none() {
            entry.requested = Some(config);
        }
        let family = Arc::clone(
            names
                .families
                .entry(name.to_owned())
                .or_insert_with(|| Arc::new(Family::new(name, limits))),
        );
        drop(guard);
        self.record(conflict);
        KeyedBreakers::new(self, family)
    }

    /// The breaker of `key` under the keyed name `family`, registered as
    /// `<family>/<key>` if it is not.
    pub(crate) fn member(&self, family: &str, key: &str) -> Arc<CircuitBreaker> {
        let name = member_name(family, key);
        if let Some(breaker) = read(&self.names)
            .entries
            .get(&name)
            .filter(|entry| entry.family.is_some())
            .and_then(|entry| entry.breaker.clone())
        {
            return breaker;
        }
        let mut guard = write(&self.names);
        let names = &mut *guard;
        let entry = names.entries.entry(name.clone()).or_default();
        entry.family = Some(family.into());
        self.breaker_of(names, &name)
    }

    /// Sets the configuration of `name`, which wins over what code asks
    /// for. Before the name's first use, its breaker is built with it;
    /// after, the running breaker is [reconfigured](CircuitBreaker::reconfigure)
    /// in place: every call site that cached it sees the change from its
    /// next call, and its state, counters and metrics carry on.
    ///
    /// A configuration with another clock cannot apply in place (the
    /// breaker's times are measured on its clock): the name then gets a
    /// fresh breaker, as [`replace`](Self::replace) gives, which call sites
    /// pick up on their next call. That is what makes a test deterministic
    /// whatever ran before it: configure the name with the test's own
    /// `ManualClock`.
    ///
    /// ```
    /// use circuit_runtime::{Config, Registry};
    ///
    /// let registry = Registry::new();
    /// let breaker = registry.get_or_create("db", Config::default());
    /// registry.configure("db", Config::builder().failure_threshold(2).build()?);
    /// assert_eq!(breaker.config().failure_threshold(), 2, "in place");
    ///
    /// registry.configure("mail", Config::builder().failure_threshold(9).build()?);
    /// let mail = registry.get_or_create("mail", Config::default());
    /// assert_eq!(mail.config().failure_threshold(), 9, "configured before first use");
    /// # Ok::<(), circuit_runtime::ConfigError>(())
    /// ```
    ///
    /// For a [keyed](Self::keyed) name, the configuration is that of every
    /// key's breaker that was not configured by its own name.
    pub fn configure(&self, name: &str, config: Config) {
        let mut guard = write(&self.names);
        let names = &mut *guard;
        let mut targets = vec![name.to_owned()];
        if names.families.contains_key(name) {
            targets.extend(
                names
                    .entries
                    .iter()
                    .filter(|(_, entry)| {
                        entry.configured.is_none()
                            && entry.breaker.is_some()
                            && entry.family.as_deref() == Some(name)
                    })
                    .map(|(member, _)| member.clone()),
            );
        }
        let mut changes = Vec::new();
        for target in targets {
            let Some(entry) = names.entries.get_mut(&target) else {
                continue;
            };
            let Some(live) = entry.breaker.clone() else {
                continue;
            };
            if live.config().clock == config.clock {
                if let Some(change) = live.apply_config(config.clone()) {
                    changes.push((live, change));
                }
            } else {
                self.install_fresh(&target, entry, config.clone());
            }
        }
        names.entries.entry(name.to_owned()).or_default().configured = Some(config);
        drop(guard);
        for (breaker, change) in changes {
            breaker.emit(&Event::Reconfiguration(change));
        }
    }

    /// Gives `name` a fresh breaker built with `config`, which also becomes
    /// the name's [configured](Self::configure) configuration. The breaker
    /// it replaces is left to whoever holds it; call sites that cached it
    /// pick up the fresh one on their next call.
    ///
    /// ```
    /// use circuit_runtime::{Config, Registry, State};
    ///
    /// let registry = Registry::new();
    /// let old = registry.get_or_create("db", Config::default());
    /// old.force_open();
    /// let fresh = registry.replace("db", Config::default());
    /// assert_eq!(fresh.state(), State::Closed);
    /// assert!(std::sync::Arc::ptr_eq(&fresh, &registry.get("db").unwrap()));
    /// ```
    pub fn replace(&self, name: &str, config: Config) -> Arc<CircuitBreaker> {
        let mut names = write(&self.names);
        let entry = names.entries.entry(name.to_owned()).or_default();
        entry.configured = Some(config.clone());
        self.install_fresh(name, entry, config)
    }

    /// Gives `entry` a fresh breaker built with `config`, retiring the one
    /// it had.
    fn install_fresh(&self, name: &str, entry: &mut Entry, config: Config) -> Arc<CircuitBreaker> {
        let fresh = self.new_breaker(name, config);
        if let Some(old) = entry.breaker.replace(Arc::clone(&fresh)) {
            old.retire();
        }
        fresh
    }

    /// Forgets `name`: its breaker and its configuration. Returns the
    /// breaker, which keeps working for whoever holds it; call sites that
    /// cached it get a new one from their next call, as if it were their
    /// first.
    ///
    /// ```
    /// use circuit_runtime::{Config, Registry};
    ///
    /// let registry = Registry::new();
    /// registry.get_or_create("db", Config::default());
    /// assert!(registry.remove("db").is_some());
    /// assert!(registry.get("db").is_none());
    /// assert!(registry.remove("db").is_none());
    /// ```
    ///
    /// A [keyed](Self::keyed) name is not removed (its keys' breakers are,
    /// one by one, by their own names): its table and its configuration
    /// stay for the keys still in use.
    pub fn remove(&self, name: &str) -> Option<Arc<CircuitBreaker>> {
        let mut names = write(&self.names);
        if names.families.contains_key(name) {
            return None;
        }
        let removed = names.entries.remove(name)?.breaker?;
        drop(names);
        removed.retire();
        Some(removed)
    }

    fn new_breaker(&self, name: &str, config: Config) -> Arc<CircuitBreaker> {
        Arc::new(CircuitBreaker::with_shared_hooks(
            name.to_owned(),
            config,
            Some(Arc::clone(&self.hooks)),
        ))
    }

    /// The conflict between the first request for `name` and `requested`,
    /// if their options differ.
    fn conflict(name: &str, entry: &Entry, requested: &Config) -> Option<Conflict> {
        let registered = entry.requested.as_ref()?;
        let differing = registered.differences(requested);
        (!differing.is_empty()).then(|| Conflict {
            name: name.to_owned(),
            registered: registered.clone(),
            requested: requested.clone(),
            differing,
        })
    }

    fn record(&self, conflict: Option<Conflict>) {
        let Some(conflict) = conflict else { return };
        let mut conflicts = lock_std(&self.conflicts);
        if !conflicts.contains(&conflict) {
            conflicts.push(conflict);
        }
    }

    /// Loads a configuration file's text (feature `toml`) and applies it:
    /// see [`load_toml_file`](Self::load_toml_file). Returns the names of
    /// the running breakers whose configuration changed, sorted.
    ///
    /// # Errors
    ///
    /// A [`ConfigFileError`](crate::ConfigFileError) with every mistake in
    /// the text, each at its line and column (the file is `<string>`); a
    /// text with a mistake changes nothing.
    ///
    /// ```
    /// use circuit_runtime::{Config, Registry};
    ///
    /// let registry = Registry::new();
    /// let db = registry.get_or_create("orders_db", Config::default());
    /// let changed = registry.load_toml(r#"
    ///     [defaults]
    ///     recovery_timeout = "30s"
    ///
    ///     [profiles.database]
    ///     failure_threshold = 3
    ///
    ///     [breakers.orders_db]
    ///     base = "database"
    ///     recovery_timeout = "45s"
    /// "#)?;
    /// assert_eq!(changed, ["orders_db"]);
    /// assert_eq!(db.config().failure_threshold(), 3);
    /// assert_eq!(db.config().recovery_timeout(), std::time::Duration::from_secs(45));
    /// # Ok::<(), circuit_runtime::ConfigFileError>(())
    /// ```
    #[cfg(feature = "toml")]
    pub fn load_toml(&self, text: &str) -> Result<Vec<String>, crate::ConfigFileError> {
        self.report(None, self.apply_toml(text))
    }

    #[cfg(feature = "toml")]
    fn apply_toml(&self, text: &str) -> Result<Vec<String>, crate::ConfigFileError> {
        let file = crate::config::file::parse(text).map_err(|problems| {
            crate::ConfigFileError::Invalid {
                file: None,
                problems,
            }
        })?;
        Ok(self.apply_file(file))
    }

    /// Tells the reload hooks about a load, and returns its outcome.
    #[cfg(feature = "toml")]
    pub(crate) fn report(
        &self,
        file: Option<std::path::PathBuf>,
        outcome: Result<Vec<String>, crate::ConfigFileError>,
    ) -> Result<Vec<String>, crate::ConfigFileError> {
        let reload = crate::Reload { file, outcome };
        self.reload_hooks.run(&reload);
        reload.outcome
    }

    /// Adds a hook that runs after every configuration file load (feature
    /// `toml`), good or bad, by hand or by a
    /// [watch](Self::watch_toml_file): see [`Reload`](crate::Reload). Like
    /// every hook, it runs outside every lock, and a panic in it is
    /// contained.
    #[cfg(feature = "toml")]
    pub fn on_reload(&self, hook: impl Fn(&crate::Reload) + Send + Sync + 'static) {
        self.reload_hooks.push(Arc::new(hook));
    }

    /// Loads a configuration file (feature `toml`) and applies it: every
    /// breaker takes its options from the file's `[breakers.<name>]` table
    /// and the profiles its `base` chain names, then from what its code
    /// asked for, then from `[defaults]`, then from the built-in defaults.
    /// Running breakers are reconfigured in place; names used later are
    /// built with it. A name [`configure`](Self::configure)d in code keeps
    /// that configuration. Loading another file replaces this one: a
    /// breaker it no longer names goes back to its code's options.
    ///
    /// The file is checked whole before anything is applied. Returns the
    /// names of the running breakers whose configuration changed, sorted.
    ///
    /// # Errors
    ///
    /// A [`ConfigFileError`](crate::ConfigFileError): the file could not be
    /// read, or every mistake in it, each at its line and column, with its
    /// table and key. A file with a mistake changes nothing.
    ///
    /// ```no_run
    /// let changed = circuit_runtime::registry().load_toml_file("config/breakers.toml")?;
    /// println!("reconfigured: {changed:?}");
    /// # Ok::<(), circuit_runtime::ConfigFileError>(())
    /// ```
    #[cfg(feature = "toml")]
    pub fn load_toml_file(
        &self,
        path: impl AsRef<std::path::Path>,
    ) -> Result<Vec<String>, crate::ConfigFileError> {
        let path = path.as_ref();
        match crate::ConfigFileError::read(path) {
            Ok(text) => self.load_file_text(path, &text),
            Err(err) => self.report(Some(path.to_owned()), Err(err)),
        }
    }

    /// Applies `text`, read from the file at `path`, and reports it.
    #[cfg(feature = "toml")]
    pub(crate) fn load_file_text(
        &self,
        path: &std::path::Path,
        text: &str,
    ) -> Result<Vec<String>, crate::ConfigFileError> {
        let outcome = self
            .apply_toml(text)
            .map_err(|err| err.with_file(path.to_owned()));
        self.report(Some(path.to_owned()), outcome)
    }

    /// Makes `file` the configuration file's layer and reconfigures every
    /// running breaker whose configuration that changes; returns their
    /// names, sorted.
    #[cfg(feature = "toml")]
    fn apply_file(&self, file: FileConfig) -> Vec<String> {
        let mut guard = write(&self.names);
        let names = &mut *guard;
        names.file = file;
        let reconfigured: Vec<(Arc<CircuitBreaker>, crate::Reconfiguration)> = names
            .entries
            .iter()
            .filter_map(|(name, entry)| {
                let breaker = entry.breaker.as_ref()?;
                let change = breaker.apply_config(names.config_of(name))?;
                Some((Arc::clone(breaker), change))
            })
            .collect();
        drop(guard);
        let mut changed = Vec::with_capacity(reconfigured.len());
        for (breaker, change) in reconfigured {
            changed.push(change.name.to_owned());
            breaker.emit(&Event::Reconfiguration(change));
        }
        changed.sort_unstable();
        changed
    }

    /// The breaker called `name`, if one was registered.
    ///
    /// ```
    /// assert!(circuit_runtime::registry().get("never-registered").is_none());
    /// ```
    pub fn get(&self, name: &str) -> Option<Arc<CircuitBreaker>> {
        read(&self.names).entries.get(name)?.breaker.clone()
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
        let mut names: Vec<String> = read(&self.names)
            .entries
            .iter()
            .filter(|(_, entry)| entry.breaker.is_some())
            .map(|(name, _)| name.clone())
            .collect();
        names.sort_unstable();
        names
    }

    /// Every breaker, sorted by name. The lock on the registry is released
    /// before any breaker is read.
    pub(crate) fn all(&self) -> Vec<Arc<CircuitBreaker>> {
        let mut breakers: Vec<Arc<CircuitBreaker>> = read(&self.names)
            .entries
            .values()
            .filter_map(|entry| entry.breaker.clone())
            .collect();
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
                config: breaker.config(),
                retry_after: breaker.retry_after(),
                degraded: breaker.is_degraded(),
            })
            .collect()
    }

    /// Every breaker's snapshot, and whether any is open: see [`Health`].
    /// States are those a call would meet now (see
    /// [`CircuitBreaker::state`]): a breaker whose open time has passed
    /// awaits a trial, and does not make the program unhealthy.
    ///
    /// ```
    /// assert!(circuit_runtime::Registry::new().health().healthy);
    /// ```
    pub fn health(&self) -> Health {
        let circuits = self.snapshots();
        let open_circuits: Vec<String> = circuits
            .iter()
            .filter(|snapshot| matches!(snapshot.state, State::Open | State::ForcedOpen))
            .map(|snapshot| snapshot.name.clone())
            .collect();
        let degraded_circuits = circuits
            .iter()
            .filter(|snapshot| snapshot.degraded)
            .map(|snapshot| snapshot.name.clone())
            .collect();
        Health {
            healthy: open_circuits.is_empty(),
            open_circuits,
            degraded_circuits,
            circuits,
        }
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
        self.hooks
            .push(Arc::new(crate::breaker::transitions_only(hook)));
    }

    /// Adds a hook that runs after every [`Event`] of every breaker of this
    /// registry, including breakers registered later. Like
    /// [`CircuitBreaker::on_event`], it runs outside every lock, and a
    /// panicking hook is contained.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use circuit_runtime::{Event, Registry};
    ///
    /// let registry = Registry::new();
    /// let log = Arc::new(Mutex::new(Vec::new()));
    /// let sink = Arc::clone(&log);
    /// registry.on_event(move |event: &Event| sink.lock().unwrap().push((event.name(), event.kind())));
    ///
    /// let mail = registry.get_or_create("mail", Default::default());
    /// mail.force_open();
    /// let _ = mail.try_acquire();
    /// assert_eq!(*log.lock().unwrap(), [("mail", "transition"), ("mail", "rejection")]);
    /// ```
    pub fn on_event(&self, hook: impl Fn(&Event) + Send + Sync + 'static) {
        // Under the lock every breaker is created under: a breaker is
        // either created after the push, and sees the hook, or marked here.
        let names = write(&self.names);
        self.hooks.push(Arc::new(hook));
        for breaker in names
            .entries
            .values()
            .filter_map(|entry| entry.breaker.as_ref())
        {
            breaker.mark_observed();
        }
    }

    /// Every name registered twice in code with different options, in the
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
