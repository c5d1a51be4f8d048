//! The sync logic, apart from any store: which local transitions are
//! published, which shared ones are applied, and when a replica stops
//! trusting a store it cannot reach.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use circuit_runtime::{Registry, State, TransitionCause};

use crate::backend::{Backend, BackendError, Change, ClusterState, Published};

/// What the handle reads of a running sync.
#[derive(Debug, Default)]
pub(crate) struct Status {
    pub(crate) degraded: AtomicBool,
    /// Completed rounds, good or bad.
    pub(crate) rounds: AtomicU64,
    /// Rounds that reached the store.
    pub(crate) good_rounds: AtomicU64,
    pub(crate) last_error: Mutex<Option<String>>,
}

/// A local transition waiting to be published.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LocalChange {
    pub(crate) state: State,
    pub(crate) cause: TransitionCause,
}

pub(crate) struct Syncer<B> {
    pub(crate) backend: B,
    pub(crate) registry: &'static Registry,
    pub(crate) replica: String,
    pub(crate) names: Vec<String>,
    pub(crate) max_staleness: Duration,
    pub(crate) status: Arc<Status>,
    /// How long a claimed trial lease lasts.
    pub(crate) trial_lease: Duration,
    /// How early, before its open time ends, a replica claims the trial.
    pub(crate) claim_ahead: Duration,
    /// The last generation of each name this replica saw in the store.
    known: HashMap<String, u64>,
    /// The latest unpublished local transition of each name.
    pending: BTreeMap<String, LocalChange>,
    last_good: Instant,
}

impl<B: Backend> Syncer<B> {
    pub(crate) fn new(
        backend: B,
        registry: &'static Registry,
        replica: String,
        names: Vec<String>,
        max_staleness: Duration,
        status: Arc<Status>,
    ) -> Self {
        Self {
            backend,
            registry,
            replica,
            names,
            max_staleness,
            status,
            trial_lease: Duration::from_secs(10),
            claim_ahead: Duration::ZERO,
            known: HashMap::new(),
            pending: BTreeMap::new(),
            last_good: Instant::now(),
        }
    }

    /// A local transition of `name`, from the registry's hook. Half-open
    /// periods stay local: each replica probes on its own. While degraded
    /// nothing is queued, so a store that comes back does not receive a
    /// burst of transitions that are stale by then.
    pub(crate) fn note_local(&mut self, name: &str, change: LocalChange) {
        if change.cause == TransitionCause::Remote || change.state == State::HalfOpen {
            return;
        }
        if !self.names.iter().any(|shared| shared == name) || self.is_degraded() {
            return;
        }
        self.pending.insert(name.to_owned(), change);
    }

    fn is_degraded(&self) -> bool {
        self.status.degraded.load(Ordering::Relaxed)
    }

    /// One round: publish what changed here, then read what changed
    /// elsewhere.
    pub(crate) async fn round(&mut self) {
        let outcome = match self.publish_pending().await {
            Ok(()) => match self.pull().await {
                Ok(()) => self.claim_trials().await,
                Err(error) => Err(error),
            },
            Err(error) => Err(error),
        };
        match outcome {
            Ok(()) => {
                self.last_good = Instant::now();
                if self.status.degraded.swap(false, Ordering::Relaxed) {
                    self.mark_degraded(false, None);
                }
                self.status.good_rounds.fetch_add(1, Ordering::Relaxed);
            }
            Err(error) => {
                if self.last_good.elapsed() >= self.max_staleness
                    && !self.status.degraded.swap(true, Ordering::Relaxed)
                {
                    // Local decisions only, until the store answers again:
                    // no trial waits for a lease nobody can grant.
                    self.pending.clear();
                    self.mark_degraded(true, Some(&error));
                }
                *self
                    .status
                    .last_error
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(error);
            }
        }
        self.status.rounds.fetch_add(1, Ordering::Relaxed);
    }

    /// Tells every shared breaker whether it decides alone, and releases
    /// the trials of those that do.
    fn mark_degraded(&self, degraded: bool, reason: Option<&str>) {
        let reason = reason.map(|reason| format!("Redis: {reason}"));
        for name in &self.names {
            if let Some(breaker) = self.registry.get(name) {
                if degraded {
                    breaker.hold_trials(false);
                }
                breaker.set_degraded(degraded, reason.as_deref());
            }
        }
    }

    async fn publish_pending(&mut self) -> Result<(), BackendError> {
        while let Some((name, change)) = self.pending.pop_first() {
            if let Err(error) = self.publish(&name, change).await {
                // Kept for the next round, unless a newer one came.
                self.pending.entry(name).or_insert(change);
                return Err(error);
            }
        }
        Ok(())
    }

    async fn publish(&mut self, name: &str, local: LocalChange) -> Result<(), BackendError> {
        let Some(breaker) = self.registry.get(name) else {
            return Ok(());
        };
        let change = Change {
            state: local.state,
            open_for: match local.state {
                State::Open => breaker.retry_after().unwrap_or_default(),
                _ => Duration::ZERO,
            },
        };
        let mut expected = self.known.get(name).copied().unwrap_or(0);
        // At most twice: once at the generation this replica knew, and once
        // more at the store's if this change should win over what is there.
        for attempt in 0..2 {
            match self
                .backend
                .publish(name, expected, &change, &self.replica)
                .await?
            {
                Published::Won(generation) => {
                    self.known.insert(name.to_owned(), generation);
                    return Ok(());
                }
                Published::Lost(cluster) => {
                    if attempt == 0 && insists(local, &cluster) {
                        expected = cluster.generation;
                    } else {
                        self.adopt(name, &cluster);
                        return Ok(());
                    }
                }
            }
        }
        Ok(())
    }

    async fn pull(&mut self) -> Result<(), BackendError> {
        let names = self.names.clone();
        let states = self.backend.pull(&names).await?;
        for (name, cluster) in names.iter().zip(&states) {
            self.adopt(name, cluster);
        }
        Ok(())
    }

    /// For each breaker whose trials are held and whose open time is
    /// (nearly) over: claims the cluster's trial lease, and lets its own
    /// trials run if it gets it. The others stay open until the holder
    /// publishes how its trial went (or its lease runs out).
    async fn claim_trials(&mut self) -> Result<(), BackendError> {
        for name in &self.names {
            let Some(breaker) = self.registry.get(name) else {
                continue;
            };
            let due = breaker
                .retry_after()
                .is_none_or(|left| left <= self.claim_ahead);
            if breaker.trials_held() && breaker.state() == State::Open && due {
                let granted = self
                    .backend
                    .claim_trial(name, &self.replica, self.trial_lease)
                    .await?;
                if granted {
                    breaker.hold_trials(false);
                }
            }
        }
        Ok(())
    }

    /// Takes the store's view of `name` if it is newer than what this
    /// replica knew, and applies another replica's transition.
    fn adopt(&mut self, name: &str, cluster: &ClusterState) {
        let known = self.known.entry(name.to_owned()).or_insert(0);
        if cluster.generation < *known {
            // The store forgot (restarted without persistence, or the key
            // expired): a new history starts, and nothing is applied.
            *known = cluster.generation;
            return;
        }
        if cluster.generation == *known {
            return;
        }
        *known = cluster.generation;
        let (Some(state), false) = (cluster.state, cluster.origin == self.replica) else {
            return;
        };
        let Some(breaker) = self.registry.get(name) else {
            return;
        };
        // The same state again changes nothing, but for an open period,
        // which takes the store's end.
        if state != breaker.state() || state == State::Open {
            let open_for = (state == State::Open).then_some(cluster.open_for);
            breaker.apply_remote(state, open_for);
        }
    }
}

/// Whether a local change that lost its compare-and-set should be
/// published over what the store holds: an operator's command always; a
/// trip unless the store already says open; a recovery never (a newer
/// trip elsewhere wins over it).
fn insists(local: LocalChange, cluster: &ClusterState) -> bool {
    match local.cause {
        TransitionCause::Reset | TransitionCause::ForcedOpen | TransitionCause::Disabled => true,
        _ => {
            local.state == State::Open
                && !matches!(cluster.state, Some(State::Open | State::ForcedOpen))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use circuit_runtime::Config;

    /// The store as a map, with a switch that makes it unreachable.
    #[derive(Default)]
    struct FakeStore {
        states: HashMap<String, ClusterState>,
        leases: HashMap<String, String>,
        down: bool,
        publications: usize,
    }

    impl Backend for &mut FakeStore {
        async fn publish(
            &mut self,
            name: &str,
            expected: u64,
            change: &Change,
            origin: &str,
        ) -> Result<Published, BackendError> {
            if self.down {
                return Err("connection refused".into());
            }
            let current = self
                .states
                .entry(name.to_owned())
                .or_insert_with(ClusterState::empty);
            if current.generation != expected {
                return Ok(Published::Lost(current.clone()));
            }
            self.publications += 1;
            *current = ClusterState {
                generation: expected + 1,
                state: Some(change.state),
                open_for: change.open_for,
                origin: origin.to_owned(),
            };
            Ok(Published::Won(expected + 1))
        }

        async fn claim_trial(
            &mut self,
            name: &str,
            origin: &str,
            _lease: Duration,
        ) -> Result<bool, BackendError> {
            if self.down {
                return Err("connection refused".into());
            }
            let holder = self
                .leases
                .entry(name.to_owned())
                .or_insert_with(|| origin.to_owned());
            Ok(holder == origin)
        }

        async fn pull(&mut self, names: &[String]) -> Result<Vec<ClusterState>, BackendError> {
            if self.down {
                return Err("connection refused".into());
            }
            Ok(names
                .iter()
                .map(|name| {
                    self.states
                        .get(name)
                        .cloned()
                        .unwrap_or_else(ClusterState::empty)
                })
                .collect())
        }
    }

    fn replica<'s>(
        store: &'s mut FakeStore,
        id: &str,
        staleness: Duration,
    ) -> Syncer<&'s mut FakeStore> {
        let registry: &'static Registry = Box::leak(Box::new(Registry::new()));
        registry.get_or_create(
            "db",
            Config::builder().failure_threshold(1).build().unwrap(),
        );
        Syncer::new(
            store,
            registry,
            id.to_owned(),
            vec!["db".to_owned()],
            staleness,
            Arc::default(),
        )
    }

    fn trip() -> LocalChange {
        LocalChange {
            state: State::Open,
            cause: TransitionCause::ConsecutiveFailures,
        }
    }

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(future)
    }

    #[test]
    fn a_trip_is_published_once_and_applied_by_another_replica() {
        let mut store = FakeStore::default();
        let (a_registry, b_registry);
        {
            let mut a = replica(&mut store, "a", Duration::from_secs(1));
            a_registry = a.registry;
            a_registry.get("db").unwrap().record_failure();
            a.note_local("db", trip());
            block_on(a.round());
        }
        assert_eq!(store.publications, 1);
        {
            let mut b = replica(&mut store, "b", Duration::from_secs(1));
            b_registry = b.registry;
            block_on(b.round());
        }
        assert_eq!(b_registry.get("db").unwrap().state(), State::Open);
        let _ = a_registry;
    }

    #[test]
    fn a_recovery_from_a_stale_view_does_not_undo_a_newer_trip() {
        let mut store = FakeStore::default();
        store.states.insert(
            "db".into(),
            ClusterState {
                generation: 4,
                state: Some(State::Open),
                open_for: Duration::from_secs(30),
                origin: "a".into(),
            },
        );
        let mut stale = replica(&mut store, "c", Duration::from_secs(1));
        let registry = stale.registry;
        stale.note_local(
            "db",
            LocalChange {
                state: State::Closed,
                cause: TransitionCause::TrialsSucceeded,
            },
        );
        block_on(stale.round());
        assert_eq!(
            registry.get("db").unwrap().state(),
            State::Open,
            "the trip wins"
        );
        drop(stale);
        assert_eq!(store.publications, 0);
    }

    #[test]
    fn an_operators_command_wins_over_what_the_store_holds() {
        let mut store = FakeStore::default();
        store.states.insert(
            "db".into(),
            ClusterState {
                generation: 2,
                state: Some(State::Open),
                open_for: Duration::from_secs(30),
                origin: "a".into(),
            },
        );
        let mut c = replica(&mut store, "c", Duration::from_secs(1));
        c.note_local(
            "db",
            LocalChange {
                state: State::Closed,
                cause: TransitionCause::Reset,
            },
        );
        block_on(c.round());
        drop(c);
        assert_eq!(store.states["db"].state, Some(State::Closed));
        assert_eq!(store.states["db"].generation, 3);
    }

    #[test]
    fn an_unreachable_store_degrades_the_replica_and_drops_what_it_would_publish() {
        let mut store = FakeStore {
            down: true,
            ..FakeStore::default()
        };
        let mut a = replica(&mut store, "a", Duration::ZERO);
        a.note_local("db", trip());
        block_on(a.round());
        assert!(a.status.degraded.load(Ordering::Relaxed));
        assert!(
            a.registry.get("db").unwrap().is_degraded(),
            "the breaker says so"
        );
        assert!(a.pending.is_empty(), "nothing stale waits for the store");
        a.note_local("db", trip());
        assert!(a.pending.is_empty(), "nor is queued while degraded");
        a.backend.down = false;
        block_on(a.round());
        assert!(!a.status.degraded.load(Ordering::Relaxed), "rejoined");
        assert!(!a.registry.get("db").unwrap().is_degraded());
        drop(a);
        assert_eq!(store.publications, 0, "no burst on return");
    }

    #[test]
    fn one_replica_gets_the_trial_and_the_other_stays_open() {
        let mut store = FakeStore::default();
        store.leases.insert("db".into(), "a".into());
        let mut b = replica(&mut store, "b", Duration::from_secs(1));
        let breaker = b.registry.get("db").unwrap();
        breaker.apply_remote(State::Open, Some(Duration::ZERO));
        breaker.hold_trials(true);
        block_on(b.round());
        assert!(breaker.trials_held(), "a holds the lease");
        assert!(breaker.try_acquire().is_err());
        b.backend.leases.clear();
        block_on(b.round());
        assert!(!breaker.trials_held(), "the lease was free");
        assert_eq!(
            breaker.try_acquire().unwrap().admitted_in(),
            State::HalfOpen
        );
    }

    #[test]
    fn a_degraded_replica_holds_no_trial() {
        let mut store = FakeStore {
            down: true,
            ..FakeStore::default()
        };
        let mut a = replica(&mut store, "a", Duration::ZERO);
        let breaker = a.registry.get("db").unwrap();
        breaker.hold_trials(true);
        block_on(a.round());
        assert!(!breaker.trials_held());
    }

    #[test]
    fn a_store_that_forgot_starts_a_new_history() {
        let mut store = FakeStore::default();
        let mut a = replica(&mut store, "a", Duration::from_secs(1));
        a.known.insert("db".into(), 7);
        block_on(a.round());
        assert_eq!(a.known["db"], 0);
        a.note_local("db", trip());
        block_on(a.round());
        drop(a);
        assert_eq!(
            store.states["db"].generation, 1,
            "published at the store's generation"
        );
    }
}
