//! Breakers that many replicas share through Redis, without Redis on the
//! path of any call.
//!
//! A service that runs as twenty replicas has twenty breakers per
//! dependency: each must see its own failures before it stops calling a
//! dead database, and an operator who forces a circuit open must do it
//! twenty times. [`SharedBreakers`] makes the breakers of the names it is
//! given act as one across replicas:
//!
//! - Each replica's breaker stays the authority for its calls: a call
//!   reads only local atomics and never waits on Redis.
//! - A thread of its own (with a current-thread tokio runtime, so programs
//!   on any executor, or none, work) publishes each local transition at
//!   once and reads the other replicas' every `sync_interval`.
//! - A transition is published by a compare-and-set on the name's
//!   generation (a fencing token, in a Lua script): two replicas tripping
//!   together make one transition, and a replica with a stale view cannot
//!   undo a newer one. A trip, and an operator's `force_open`, `disable`
//!   or `reset`, reach every replica; with a [quorum](SharedBreakersBuilder::quorum),
//!   a trip waits for enough replicas to trip.
//! - When an open period ends, one replica at a time runs the trials (a
//!   lease in Redis, set once with an expiry and renewed while the trials
//!   run): a recovered dependency is probed by one replica, not all.
//! - With [`share_counters`](SharedBreakersBuilder::share_counters), the
//!   failures themselves are summed across replicas, and the cluster's
//!   count trips every replica.
//! - A reconfiguration made on one replica (in code, or by a configuration
//!   file) reaches every replica.
//! - Open periods are measured on Redis's clock (`TIME`), so the replicas'
//!   clock skew cannot shorten or stretch them.
//! - Redis down or slow: calls go on as before; after `max_staleness`
//!   without a good round the replica decides alone and reports itself
//!   [degraded](SharedBreakers::is_degraded), and when Redis answers again
//!   it rejoins without replaying what it decided meanwhile.
//!
//! ```no_run
//! use circuit_redis::SharedBreakers;
//!
//! let shared = SharedBreakers::builder("redis://127.0.0.1:6379")
//!     .share_transitions("payments")
//!     .share_transitions("inventory")
//!     .start()?;
//! // `#[circuit_breaker(name = "payments")]` calls now trip every replica.
//! assert!(!shared.is_degraded());
//! # Ok::<(), circuit_redis::Error>(())
//! ```

mod backend;
mod redis_backend;
mod sync;

use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use circuit_runtime::{registry, Registry, State};
use tokio::sync::{mpsc, oneshot};

use crate::redis_backend::RedisBackend;
use crate::sync::{LocalChange, Status, Syncer};

/// How often a replica reads the other replicas' transitions, by default.
pub const DEFAULT_SYNC_INTERVAL: Duration = Duration::from_millis(100);

/// How long a replica trusts a Redis it cannot reach before it decides
/// alone, by default.
pub const DEFAULT_MAX_STALENESS: Duration = Duration::from_secs(2);

/// How long a replica may run a breaker's trials before another may, by
/// default: the time a replica that died mid-trial holds up recovery.
pub const DEFAULT_TRIAL_LEASE: Duration = Duration::from_secs(10);

/// How long Redis keeps the state of a breaker no replica writes, by
/// default.
pub const DEFAULT_KEY_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// Why sharing could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The Redis address is not one the client understands.
    #[error("invalid Redis address {url:?}: {reason}")]
    InvalidUrl {
        /// The address as given.
        url: String,
        /// What the client said about it.
        reason: String,
    },
    /// The sync thread or its runtime could not start.
    #[error("could not start the Redis sync thread: {0}")]
    Thread(std::io::Error),
}

/// Starts sharing breakers through Redis: see [`SharedBreakers::builder`].
#[derive(Debug)]
#[must_use = "call `start` to share the breakers"]
pub struct SharedBreakersBuilder {
    url: String,
    registry: &'static Registry,
    names: Vec<String>,
    counted: Vec<String>,
    quorum: u32,
    sync_interval: Duration,
    max_staleness: Duration,
    key_ttl: Duration,
    trial_lease: Duration,
    replica: Option<String>,
}

impl SharedBreakersBuilder {
    /// Shares the transitions of the breaker called `name` (of the
    /// registry, see [`registry`](Self::registry)): each replica trips on
    /// its own calls, and every replica honours a shared open (see
    /// [`quorum`](Self::quorum)), recovery and operator's command.
    ///
    /// ```
    /// let builder = circuit_redis::SharedBreakers::builder("redis://127.0.0.1")
    ///     .share_transitions("payments");
    /// # let _ = builder;
    /// ```
    pub fn share_transitions(mut self, name: impl Into<String>) -> Self {
        let name = name.into();
        if !self.names.contains(&name) {
            self.names.push(name);
        }
        self
    }

    /// Shares the breaker called `name` as [`share_transitions`](Self::share_transitions) does, and
    /// its counts too: its failures in a row, and the calls and failures of
    /// its time window (`window_duration`), are summed across replicas
    /// every `sync_interval`, and a replica trips its breaker when the
    /// cluster's reach the breaker's thresholds, so twenty replicas that
    /// each see one failure of five trip together. A count window
    /// (`window_size`) is judged by each replica alone. Counts are stale by
    /// at most a `sync_interval`; the transition of a trip the cluster's
    /// counts decided has the cause `Remote` on every replica, the one
    /// that decided it included.
    ///
    /// ```
    /// let builder = circuit_redis::SharedBreakers::builder("redis://127.0.0.1")
    ///     .share_counters("payments");
    /// # let _ = builder;
    /// ```
    pub fn share_counters(mut self, name: impl Into<String>) -> Self {
        let name = name.into();
        if !self.counted.contains(&name) {
            self.counted.push(name.clone());
        }
        self.share_transitions(name)
    }

    /// How many replicas must trip a shared breaker on their own counts
    /// (within one open period of each other) before every replica
    /// honours the open: 1, the default, shares the first trip at once; a
    /// quorum keeps one replica's bad luck (a sick host, a noisy
    /// neighbour) its own. Operators' commands, and trips decided on
    /// [shared counts](Self::share_counters), are shared at once.
    ///
    /// ```
    /// let builder = circuit_redis::SharedBreakers::builder("redis://127.0.0.1")
    ///     .share_transitions("payments")
    ///     .quorum(3);
    /// # let _ = builder;
    /// ```
    pub fn quorum(mut self, replicas: u32) -> Self {
        self.quorum = replicas.max(1);
        self
    }

    /// The registry whose breakers are shared: the global
    /// [`registry()`](circuit_runtime::registry), which `#[circuit_breaker]`
    /// uses, unless set.
    ///
    /// ```
    /// let registry: &'static circuit_runtime::Registry = Box::leak(Box::default());
    /// let builder = circuit_redis::SharedBreakers::builder("redis://127.0.0.1").registry(registry);
    /// # let _ = builder;
    /// ```
    pub fn registry(mut self, registry: &'static Registry) -> Self {
        self.registry = registry;
        self
    }

    /// How often the other replicas' transitions are read
    /// ([`DEFAULT_SYNC_INTERVAL`] unless set): how stale a replica's view
    /// may be. Local transitions are published at once, not on this beat.
    ///
    /// ```
    /// use std::time::Duration;
    /// let builder = circuit_redis::SharedBreakers::builder("redis://127.0.0.1")
    ///     .sync_interval(Duration::from_millis(250));
    /// # let _ = builder;
    /// ```
    pub fn sync_interval(mut self, interval: Duration) -> Self {
        self.sync_interval = interval.max(Duration::from_millis(1));
        self
    }

    /// How long without a good round with Redis before the replica decides
    /// alone and reports itself degraded ([`DEFAULT_MAX_STALENESS`] unless
    /// set).
    ///
    /// ```
    /// use std::time::Duration;
    /// let builder = circuit_redis::SharedBreakers::builder("redis://127.0.0.1")
    ///     .max_staleness(Duration::from_secs(5));
    /// # let _ = builder;
    /// ```
    pub fn max_staleness(mut self, staleness: Duration) -> Self {
        self.max_staleness = staleness;
        self
    }

    /// How long Redis keeps a name's state after its last transition
    /// ([`DEFAULT_KEY_TTL`] unless set), so abandoned breakers clean up.
    ///
    /// ```
    /// use std::time::Duration;
    /// let builder = circuit_redis::SharedBreakers::builder("redis://127.0.0.1")
    ///     .key_ttl(Duration::from_secs(3600));
    /// # let _ = builder;
    /// ```
    pub fn key_ttl(mut self, ttl: Duration) -> Self {
        self.key_ttl = ttl.max(Duration::from_millis(1));
        self
    }

    /// How long the replica that won a breaker's trial may run it before
    /// another may claim it ([`DEFAULT_TRIAL_LEASE`] unless set): one
    /// replica at a time probes a recovered dependency, and a replica that
    /// dies mid-trial holds the others up this long at most.
    ///
    /// ```
    /// use std::time::Duration;
    /// let builder = circuit_redis::SharedBreakers::builder("redis://127.0.0.1")
    ///     .trial_lease(Duration::from_secs(5));
    /// # let _ = builder;
    /// ```
    pub fn trial_lease(mut self, lease: Duration) -> Self {
        self.trial_lease = lease.max(Duration::from_millis(1));
        self
    }

    /// This replica's name in Redis, which tells its own transitions from
    /// the others': unique per process unless set (host name and process
    /// id, and a random part).
    ///
    /// ```
    /// let builder = circuit_redis::SharedBreakers::builder("redis://127.0.0.1").replica("pod-7");
    /// # let _ = builder;
    /// ```
    pub fn replica(mut self, replica: impl Into<String>) -> Self {
        self.replica = Some(replica.into());
        self
    }

    /// Starts the sync thread. It does not wait for Redis: a replica that
    /// starts while Redis is down runs on its own breakers and joins when
    /// Redis answers.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidUrl`] for an address the Redis client refuses, and
    /// [`Error::Thread`] when the thread cannot start.
    ///
    /// ```no_run
    /// let shared = circuit_redis::SharedBreakers::builder("redis://127.0.0.1:6379")
    ///     .share_transitions("payments")
    ///     .start()?;
    /// # Ok::<(), circuit_redis::Error>(())
    /// ```
    pub fn start(self) -> Result<SharedBreakers, Error> {
        let client = redis::Client::open(self.url.as_str()).map_err(|error| Error::InvalidUrl {
            url: self.url.clone(),
            reason: error.to_string(),
        })?;
        let replica = self.replica.unwrap_or_else(replica_id);
        let status = Arc::new(Status::default());
        let (changes, received) = mpsc::unbounded_channel();
        let shared: Vec<String> = self.names.clone();
        let hook_status = Arc::clone(&status);
        let hook_registry = self.registry;
        // Runs after every transition of every breaker of the registry,
        // outside every lock, on the thread that made it; inert once the
        // sync stops. A shared breaker's trials are held from its first
        // opening on (later openings hold them inside the transition).
        self.registry.on_transition(move |transition| {
            if !hook_status.running.load(Ordering::Acquire)
                || !shared.iter().any(|name| name == transition.name)
            {
                return;
            }
            if !hook_status.degraded.load(Ordering::Relaxed) {
                if let Some(breaker) = hook_registry.get(transition.name) {
                    if !breaker.hold_trials_on_open(true) && transition.to == State::Open {
                        breaker.hold_trials(true);
                    }
                    // The sync may have stopped meanwhile: nothing would
                    // ever release the hold.
                    if !hook_status.running.load(Ordering::Acquire) {
                        breaker.hold_trials_on_open(false);
                    }
                }
            }
            let change = LocalChange {
                state: transition.to,
                cause: transition.cause,
                by_shared_counts: false,
            };
            // Judged when the transition happens, not when the sync thread
            // gets to it: a decision made alone is never published later.
            if hook_status.degraded.load(Ordering::Relaxed) && !change.is_command() {
                return;
            }
            let _ = changes.send((transition.name.to_owned(), change));
        });
        let (stop, stopped) = oneshot::channel();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(Error::Thread)?;
        // The connection manager is made lazily, but within a runtime.
        let entered = runtime.enter();
        let connection =
            connect(client, self.sync_interval).map_err(|reason| Error::InvalidUrl {
                url: self.url.clone(),
                reason,
            })?;
        drop(entered);
        let mut syncer = Syncer::new(
            RedisBackend::new(connection, self.key_ttl),
            self.registry,
            replica,
            self.names.clone(),
            self.max_staleness,
            Arc::clone(&status),
        );
        syncer.trial_lease = self.trial_lease;
        syncer.counted.clone_from(&self.counted);
        syncer.quorum = self.quorum;
        syncer.claim_ahead = self.sync_interval;
        let interval = self.sync_interval;
        // The hook acts from here; if the thread fails to start, dropping
        // the guard with the closure makes it inert again.
        status.running.store(true, Ordering::Release);
        let released = Released {
            status: Arc::clone(&status),
            registry: self.registry,
            names: self.names.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("circuit-redis-sync".into())
            .spawn(move || {
                // However the thread ends, the breakers go on alone.
                let _released = released;
                runtime.block_on(run(syncer, received, stopped, interval));
            })
            .map_err(Error::Thread)?;
        Ok(SharedBreakers {
            status,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

/// The sync thread's loop: a round on every local transition (published
/// at once) and on every beat, until told to stop, which it hears during a
/// round too.
async fn run(
    mut syncer: Syncer<RedisBackend>,
    mut received: mpsc::UnboundedReceiver<(String, LocalChange)>,
    mut stopped: oneshot::Receiver<()>,
    interval: Duration,
) {
    let mut beat = tokio::time::interval(interval);
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut stopped => return,
            Some((name, change)) = received.recv() => {
                syncer.note_local(&name, change);
                while let Ok((name, change)) = received.try_recv() {
                    syncer.note_local(&name, change);
                }
            }
            _ = beat.tick() => {}
        }
        tokio::select! {
            _ = &mut stopped => return,
            () = bounded(syncer.round(), interval) => {}
        }
    }
}

/// Marks the sync stopped and lets every shared breaker decide alone:
/// dropped when the sync thread ends, however it ends.
struct Released {
    status: Arc<Status>,
    registry: &'static Registry,
    names: Vec<String>,
}

impl Drop for Released {
    fn drop(&mut self) {
        self.status.running.store(false, Ordering::Release);
        for name in &self.names {
            if let Some(breaker) = self.registry.get(name) {
                breaker.hold_trials_on_open(false);
            }
        }
    }
}

/// How long one exchange with Redis may take before it counts as failed:
/// long enough for a slow Redis (a few hundred milliseconds away) to
/// answer, short enough that a dead one is noticed well within the
/// default `max_staleness`.
const REDIS_TIMEOUT: Duration = Duration::from_secs(1);

/// Bounds one round in time: a Redis that does not answer delays the
/// sync thread, never a call, and never for long.
async fn bounded(round: impl std::future::Future<Output = ()>, interval: Duration) {
    let limit = (interval * 10).max(REDIS_TIMEOUT * 3);
    let _ = tokio::time::timeout(limit, round).await;
}

/// A connection that is made on first use and remade by itself after
/// Redis goes away, with short timeouts so a dead Redis costs a round,
/// not a stuck thread.
fn connect(
    client: redis::Client,
    interval: Duration,
) -> Result<redis::aio::ConnectionManager, String> {
    let timeout = (interval * 5).max(REDIS_TIMEOUT);
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout))
        .set_number_of_retries(1)
        .set_max_delay(interval);
    redis::aio::ConnectionManager::new_lazy_with_config(client, config)
        .map_err(|error| error.to_string())
}

/// A name for this process among the replicas.
fn replica_id() -> String {
    use std::hash::BuildHasher;
    let random = std::collections::hash_map::RandomState::new().hash_one(std::process::id());
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "replica".into());
    format!("{host}-{}-{random:016x}", std::process::id())
}

/// Breakers shared through Redis, while this handle lives: dropping it
/// stops the sync, and the breakers go on, each on its own (none waits
/// for a trial lease any more).
///
/// ```no_run
/// let shared = circuit_redis::SharedBreakers::builder("redis://127.0.0.1:6379")
///     .share_transitions("payments")
///     .start()?;
/// if shared.is_degraded() {
///     eprintln!("Redis unreachable: {:?}", shared.last_error());
/// }
/// # Ok::<(), circuit_redis::Error>(())
/// ```
#[derive(Debug)]
pub struct SharedBreakers {
    status: Arc<Status>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl SharedBreakers {
    /// Starts describing what to share through the Redis at `url`
    /// (`redis://host:port/db`).
    ///
    /// ```
    /// let builder = circuit_redis::SharedBreakers::builder("redis://127.0.0.1:6379");
    /// # let _ = builder;
    /// ```
    pub fn builder(url: impl Into<String>) -> SharedBreakersBuilder {
        SharedBreakersBuilder {
            url: url.into(),
            registry: registry(),
            names: Vec::new(),
            counted: Vec::new(),
            quorum: 1,
            sync_interval: DEFAULT_SYNC_INTERVAL,
            max_staleness: DEFAULT_MAX_STALENESS,
            key_ttl: DEFAULT_KEY_TTL,
            trial_lease: DEFAULT_TRIAL_LEASE,
            replica: None,
        }
    }

    /// Whether this replica decides alone because Redis has not answered
    /// for `max_staleness`.
    pub fn is_degraded(&self) -> bool {
        self.status.degraded.load(Ordering::Relaxed)
    }

    /// How many rounds with Redis have succeeded: rises every
    /// `sync_interval` while Redis answers.
    pub fn good_rounds(&self) -> u64 {
        self.status.good_rounds.load(Ordering::Relaxed)
    }

    /// The error of the last round with Redis, while rounds fail; `None`
    /// once one succeeds.
    pub fn last_error(&self) -> Option<String> {
        self.status
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for SharedBreakers {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
