//! The sync logic, apart from any store: which local transitions are
//! published, which shared ones are applied, and when a replica stops
//! trusting a store it cannot reach.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use circuit_runtime::{CircuitBreaker, Metrics, Registry, State, TransitionCause};

use crate::backend::{
    Backend, BackendError, Change, ClusterCounts, ClusterState, CountReport, Published,
    SharedConfig,
};
use circuit_runtime::Config;

/// What the handle and the registry's hook read of a running sync.
#[derive(Debug, Default)]
pub(crate) struct Status {
    pub(crate) degraded: AtomicBool,
    /// Cleared when the sync stops (its handle dropped, its thread ended):
    /// the hook then queues nothing and holds no trial.
    pub(crate) running: AtomicBool,
    /// Completed rounds, good or bad.
    pub(crate) rounds: AtomicU64,
    /// Rounds that reached the store.
    pub(crate) good_rounds: AtomicU64,
    /// The error of the last round, while rounds fail.
    pub(crate) last_error: Mutex<Option<String>>,
}

/// A local transition waiting to be published.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LocalChange {
    pub(crate) state: State,
    pub(crate) cause: TransitionCause,
    /// A trip the cluster's shared counts decided, not this replica's own.
    pub(crate) by_shared_counts: bool,
}

impl LocalChange {
    /// An operator's command, which applies to every replica even when it
    /// was made while the store could not be reached.
    /// A trip this replica's own calls decided.
    fn is_own_trip(self) -> bool {
        self.state == State::Open
            && !self.by_shared_counts
            && matches!(
                self.cause,
                TransitionCause::ConsecutiveFailures
                    | TransitionCause::FailureRate
                    | TransitionCause::SlowCallRate
            )
    }

    pub(crate) fn is_command(self) -> bool {
        matches!(
            self.cause,
            TransitionCause::Reset | TransitionCause::ForcedOpen | TransitionCause::Disabled
        )
    }
}

/// The most transitions of one name kept unpublished.
const MAX_QUEUED: usize = 8;

/// What this replica last saw of a name in the store.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Known {
    generation: u64,
    state: Option<State>,
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
    /// The names whose counts are shared too, not only their transitions.
    pub(crate) counted: Vec<String>,
    /// How many replicas must trip a name on their own counts before the
    /// trip is shared.
    pub(crate) quorum: u32,
    /// Each counted name's metrics at its last report.
    reported: HashMap<String, Metrics>,
    /// Each name's configuration as this replica last saw it run.
    configs: HashMap<String, Config>,
    /// The version of each name's shared configuration last seen.
    config_versions: HashMap<String, u64>,
    known: HashMap<String, Known>,
    /// The unpublished local transitions of each name, oldest first (a
    /// few: each is checked against the breaker when published, and one
    /// the breaker has moved past is dropped).
    pending: BTreeMap<String, Vec<LocalChange>>,
    /// The names whose trial lease this replica holds.
    leased: HashMap<String, bool>,
    last_good: Instant,
    /// The first thing the store refused of one name this round (its
    /// keys damaged by hand), if any: that name waits, the others go on,
    /// and this is reported as the last error, though the round was good.
    refusal: Option<BackendError>,
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
            counted: Vec::new(),
            quorum: 1,
            reported: HashMap::new(),
            configs: HashMap::new(),
            config_versions: HashMap::new(),
            known: HashMap::new(),
            pending: BTreeMap::new(),
            leased: HashMap::new(),
            last_good: Instant::now(),
            refusal: None,
        }
    }

    /// A local transition of `name`, from the registry's hook. Half-open
    /// periods are not published (the lease decides who probes). While
    /// degraded only an operator's command is queued, so a store that
    /// comes back receives no burst of decisions that are stale by then.
    pub(crate) fn note_local(&mut self, name: &str, change: LocalChange) {
        if change.cause == TransitionCause::Remote || change.state == State::HalfOpen {
            return;
        }
        if !self.names.iter().any(|shared| shared == name) {
            return;
        }
        if self.is_degraded() && !change.is_command() {
            return;
        }
        let queued = self.pending.entry(name.to_owned()).or_default();
        if queued.len() == MAX_QUEUED {
            queued.remove(0);
        }
        queued.push(change);
    }

    fn is_degraded(&self) -> bool {
        self.status.degraded.load(Ordering::Relaxed)
    }

    /// One round: one exchange with the store (this replica's counts
    /// out, the cluster's view in), then what it calls for: adopt other
    /// replicas' transitions and configurations, trip on the cluster's
    /// counts, publish what changed here, claim the trials that are due.
    /// A round with nothing to publish or claim is one round trip.
    pub(crate) async fn round(&mut self) {
        self.mark_breakers();
        let outcome = self.sync().await;
        match outcome {
            Ok(()) => {
                // Rejoined already: `sync` does it before it applies anything.
                self.last_good = Instant::now();
                *self
                    .status
                    .last_error
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) =
                    self.refusal.take().map(|refusal| refusal.to_string());
                self.status.good_rounds.fetch_add(1, Ordering::Relaxed);
            }
            Err(error) => {
                if self.last_good.elapsed() >= self.max_staleness
                    && !self.status.degraded.swap(true, Ordering::Relaxed)
                {
                    // Local decisions only, until the store answers again:
                    // no trial waits for a lease nobody can grant.
                    for changes in self.pending.values_mut() {
                        changes.retain(|change| change.is_command());
                    }
                    self.pending.retain(|_, changes| !changes.is_empty());
                    self.leased.clear();
                    self.mark_degraded(true, Some(&error.message));
                }
                *self
                    .status
                    .last_error
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(error.message);
            }
        }
        self.status.rounds.fetch_add(1, Ordering::Relaxed);
    }

    /// Makes every shared breaker that exists hold its trials when it
    /// opens (breakers are made by their first call, at any time), unless
    /// the replica decides alone.
    fn mark_breakers(&self) {
        let hold = !self.is_degraded();
        for name in &self.names {
            if let Some(breaker) = self.registry.get(name) {
                breaker.hold_trials_on_open(hold);
            }
        }
    }

    /// Clears the degraded state once the store answered. An open period
    /// that began while deciding alone, or was adopted just before, holds
    /// its trial for the cluster's lease as one beginning now would.
    fn rejoin(&self) {
        if self.status.degraded.swap(false, Ordering::Relaxed) {
            self.mark_degraded(false, None);
            self.mark_breakers();
            for name in &self.names {
                if let Some(breaker) = self.registry.get(name) {
                    if breaker.state() == State::Open {
                        breaker.hold_trials(true);
                    }
                }
            }
        }
    }

    /// Tells every shared breaker whether it decides alone; one that does
    /// holds no trial.
    fn mark_degraded(&self, degraded: bool, reason: Option<&str>) {
        let reason = reason.map(|reason| format!("Redis: {reason}"));
        for name in &self.names {
            if let Some(breaker) = self.registry.get(name) {
                if degraded {
                    breaker.hold_trials_on_open(false);
                }
                breaker.set_degraded(degraded, reason.as_deref());
            }
        }
    }

    async fn sync(&mut self) -> Result<(), BackendError> {
        self.refusal = None;
        if self.is_degraded() {
            // Back from a store that failed, the operators' commands made
            // meanwhile go first, and a store that refuses them is not
            // rejoined: one that answers reads but refuses writes (out of
            // memory, a read-only replica) would otherwise be rejoined and
            // left again every round.
            self.publish_pending().await?;
        }
        self.publish_configs().await?;
        let reports = self.count_reports();
        let names = self.names.clone();
        let exchanged = self.backend.exchange(&reports, &names).await?;
        for refusal in exchanged.refusals {
            self.refusal.get_or_insert(refusal);
        }
        // The store answered: a shared open applied now is held like any.
        self.rejoin();
        // A name with a transition of its own to publish is adopted after
        // the publication, which is judged by what this replica knew when
        // it made the transition (the fencing token), and only if the
        // publication taught it nothing newer.
        let mut after_publishing = Vec::new();
        for (name, cluster) in names.iter().zip(exchanged.states) {
            let Some(cluster) = cluster else {
                continue;
            };
            if self.pending.contains_key(name) {
                let known = self.known.get(name).copied().unwrap_or_default();
                after_publishing.push((name, cluster, known));
            } else {
                self.adopt(name, &cluster);
            }
        }
        self.apply_configs(&names, exchanged.configs);
        for ((name, report), cluster) in reports.iter().zip(&exchanged.counts) {
            if let Some(cluster) = cluster {
                self.trip_on_counts(name, report, cluster);
            }
        }
        self.publish_pending().await?;
        for (name, cluster, known) in after_publishing {
            if self.known.get(name).copied().unwrap_or_default() == known {
                self.adopt(name, &cluster);
            }
        }
        self.claim_trials().await
    }

    /// Each counted name's outcomes since its last report: only a closed
    /// period's calls count, from the first round that sees the breaker;
    /// a new period starts from what the breaker has now.
    fn count_reports(&mut self) -> Vec<(String, CountReport)> {
        let mut reports = Vec::new();
        for name in &self.counted {
            let Some(breaker) = self.registry.get(name) else {
                continue;
            };
            let metrics = breaker.metrics();
            // Counted as reported before the store answers: a report that
            // timed out may have been added, and is not added twice
            // (counts are lost rather than doubled).
            let Some(before) = self.reported.insert(name.clone(), metrics.clone()) else {
                continue;
            };
            if breaker.state() != State::Closed {
                continue;
            }
            let delta = metrics.since(&before);
            let (successes, failures) = (delta.successful_calls, delta.failed_calls);
            reports.push((
                name.clone(),
                CountReport {
                    calls: successes + failures,
                    failures,
                    succeeded: successes > 0,
                    consecutive: u64::from(metrics.consecutive_failures),
                    window: breaker.config().window_duration(),
                },
            ));
        }
        reports
    }

    /// Trips `name`'s breaker when the cluster's failures in a row, or its
    /// failure rate over the breaker's time window, reach the breaker's
    /// thresholds. The trip is published like any.
    fn trip_on_counts(&mut self, name: &str, report: &CountReport, cluster: &ClusterCounts) {
        let Some(breaker) = self.registry.get(name) else {
            return;
        };
        let config = breaker.config();
        let rate_reached = config.failure_rate_threshold().is_some_and(|threshold| {
            report.window.is_some()
                && cluster.calls >= u64::from(config.minimum_calls())
                && cluster.calls > 0
                && ratio(cluster.failures, cluster.calls) >= threshold
        });
        let cause = if cluster.consecutive >= u64::from(config.failure_threshold()) {
            TransitionCause::ConsecutiveFailures
        } else if rate_reached {
            TransitionCause::FailureRate
        } else {
            return;
        };
        // Not if another replica's trip was adopted in this round.
        if breaker.state() == State::Closed {
            breaker.apply_remote(State::Open, None);
            self.pending
                .entry(name.to_owned())
                .or_default()
                .push(LocalChange {
                    state: State::Open,
                    cause,
                    by_shared_counts: true,
                });
        }
    }

    /// Publishes a reconfiguration made here (in code or by a file). The
    /// configuration a breaker starts with is its replica's own, and is
    /// not published.
    async fn publish_configs(&mut self) -> Result<(), BackendError> {
        for name in &self.names {
            let Some(breaker) = self.registry.get(name) else {
                continue;
            };
            let current = breaker.config();
            let Some(seen) = self.configs.get(name) else {
                self.configs.insert(name.clone(), current);
                continue;
            };
            if *seen != current {
                let Ok(json) = serde_json::to_string(&current) else {
                    continue;
                };
                match self
                    .backend
                    .publish_config(name, &json, &self.replica)
                    .await
                {
                    Ok(version) => {
                        self.config_versions.insert(name.clone(), version);
                        self.configs.insert(name.clone(), current);
                    }
                    Err(refusal) if refusal.name_only => {
                        self.refusal.get_or_insert(refusal);
                    }
                    Err(error) => return Err(error),
                }
            }
        }
        Ok(())
    }

    /// Applies a reconfiguration made on another replica in place, on the
    /// breaker's own clock, as a running breaker is reconfigured: a later
    /// change on any replica replaces it, and is shared in turn. A change
    /// shared before this replica started is not applied.
    fn apply_configs(&mut self, names: &[String], shared: Vec<Option<SharedConfig>>) {
        for (name, shared) in names.iter().zip(shared) {
            let Some(version) = self.config_versions.get(name).copied() else {
                // What was shared before this replica started is not its
                // configuration: it runs the one it was deployed with.
                let version = shared.as_ref().map_or(0, |shared| shared.version);
                self.config_versions.insert(name.clone(), version);
                continue;
            };
            let (Some(shared), Some(breaker)) = (shared, self.registry.get(name)) else {
                continue;
            };
            // Another version, higher or (after the store forgot) lower.
            if shared.version == version {
                continue;
            }
            self.config_versions.insert(name.clone(), shared.version);
            if shared.origin == self.replica {
                continue;
            }
            let Ok(config) = serde_json::from_str::<Config>(&shared.json) else {
                continue;
            };
            breaker.reconfigure(config);
            // As seen running: not published back.
            self.configs.insert(name.clone(), breaker.config());
        }
    }

    /// Publishes each name's queued transitions, oldest first. A change
    /// leaves the queue only once it is settled (taken, or found to be
    /// history), so a round cut off mid-way loses none. A name whose keys
    /// are damaged keeps its changes and waits; the others go on.
    async fn publish_pending(&mut self) -> Result<(), BackendError> {
        let names: Vec<String> = self.pending.keys().cloned().collect();
        for name in names {
            while let Some(change) = self
                .pending
                .get(&name)
                .and_then(|changes| changes.first().copied())
            {
                match self.publish(&name, change).await {
                    Ok(()) => {
                        if let Some(changes) = self.pending.get_mut(&name) {
                            changes.remove(0);
                            if changes.is_empty() {
                                self.pending.remove(&name);
                            }
                        }
                    }
                    Err(refusal) if refusal.name_only => {
                        self.refusal.get_or_insert(refusal);
                        break;
                    }
                    Err(error) => return Err(error),
                }
            }
        }
        Ok(())
    }

    async fn publish(&mut self, name: &str, local: LocalChange) -> Result<(), BackendError> {
        let Some(breaker) = self.registry.get(name) else {
            return Ok(());
        };
        let known = self.known.get(name).copied().unwrap_or_default();
        if !still_current(local, &breaker) {
            // The breaker moved on since (a later transition, or another
            // replica's, applied meanwhile): this one is history.
            return Ok(());
        }
        if !local.is_command()
            && local.state == State::Open
            && matches!(known.state, Some(State::Open | State::ForcedOpen))
        {
            // Another replica's trip, adopted while this one was queued:
            // the cluster is open already, one transition is enough.
            return Ok(());
        }
        let cluster_open = matches!(known.state, Some(State::Open | State::ForcedOpen));
        if local.state == State::Closed && !local.is_command() && !cluster_open {
            // A recovery from a trip that was never shared (below its
            // quorum): the cluster has nothing to undo, and another
            // replica's own trip must not be closed by it.
            return Ok(());
        }
        // A fresh trip on this replica's own calls waits for its quorum;
        // one the cluster's counts decided, a reopening after a trial, and
        // an operator's command do not.
        let change = Change {
            state: local.state,
            open_for: match local.state {
                State::Open => breaker.retry_after().unwrap_or_default(),
                _ => Duration::ZERO,
            },
            quorum: if local.is_own_trip() && !cluster_open {
                self.quorum
            } else {
                1
            },
        };
        let mut expected = known.generation;
        // At most twice: once at the generation this replica knew, and once
        // more at the store's if this change should win over what is there.
        for attempt in 0..2 {
            match self
                .backend
                .publish(name, expected, &change, &self.replica)
                .await?
            {
                Published::Won(generation) => {
                    self.known.insert(
                        name.to_owned(),
                        Known {
                            generation,
                            state: Some(local.state),
                        },
                    );
                    return Ok(());
                }
                Published::Counted => return Ok(()),
                Published::Lost(cluster) => {
                    if attempt == 0 && insists(local, &cluster) {
                        // Known, though not applied: this change is to
                        // replace it.
                        self.known.insert(
                            name.to_owned(),
                            Known {
                                generation: cluster.generation,
                                state: cluster.state,
                            },
                        );
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

    /// For each breaker whose trials are held and whose open time is
    /// (nearly) over: claims the cluster's trial lease, and lets its own
    /// trials run if it gets it; renews the lease of a trial still
    /// running. The others stay open until the holder publishes how its
    /// trial went (or its lease runs out).
    async fn claim_trials(&mut self) -> Result<(), BackendError> {
        for name in &self.names {
            let Some(breaker) = self.registry.get(name) else {
                continue;
            };
            let state = breaker.state();
            let due = breaker
                .retry_after()
                .is_none_or(|left| left <= self.claim_ahead);
            let claiming = breaker.trials_held() && state == State::Open && due;
            let renewing = state == State::HalfOpen && self.leased.contains_key(name);
            if !claiming && !renewing {
                if state == State::Closed {
                    self.leased.remove(name);
                }
                continue;
            }
            let granted = match self
                .backend
                .claim_trial(name, &self.replica, self.trial_lease)
                .await
            {
                Ok(granted) => granted,
                Err(refusal) if refusal.name_only => {
                    self.refusal.get_or_insert(refusal);
                    false
                }
                Err(error) => return Err(error),
            };
            if granted {
                self.leased.insert(name.clone(), true);
                if claiming {
                    breaker.hold_trials(false);
                }
            } else {
                self.leased.remove(name);
            }
        }
        Ok(())
    }

    /// Takes the store's view of `name` if it is newer than what this
    /// replica knew, and applies another replica's transition.
    fn adopt(&mut self, name: &str, cluster: &ClusterState) {
        // Not before the breaker exists: a breaker made by its first call,
        // later, must still be given the shared state.
        let Some(breaker) = self.registry.get(name) else {
            return;
        };
        let known = self.known.entry(name.to_owned()).or_default();
        if cluster.generation == known.generation {
            return;
        }
        // A lower generation: the store forgot (restarted without
        // persistence, or the key expired) and a new history began, whose
        // transitions are as new as any.
        *known = Known {
            generation: cluster.generation,
            state: cluster.state,
        };
        let (Some(state), false) = (cluster.state, cluster.origin == self.replica) else {
            return;
        };
        apply(&breaker, state, cluster.open_for);
    }
}

/// `part / whole`, as a rate.
#[allow(clippy::cast_precision_loss)] // counts far below 2^52
fn ratio(part: u64, whole: u64) -> f64 {
    part as f64 / whole as f64
}

/// Applies another replica's `state` to `breaker`. The same state again
/// changes nothing, but for an open period, which takes the store's end.
fn apply(breaker: &CircuitBreaker, state: State, open_for: Duration) {
    if state != breaker.state() || state == State::Open {
        let open_for = (state == State::Open).then_some(open_for);
        breaker.apply_remote(state, open_for);
    }
}

/// Whether `breaker` is still where `local` took it.
fn still_current(local: LocalChange, breaker: &CircuitBreaker) -> bool {
    match local.state {
        // Open, with time left: an elapsed period is half-open already.
        State::Open => breaker.retry_after().is_some(),
        state => breaker.state() == state,
    }
}

/// Whether a local change that lost its compare-and-set should be
/// published over what the store holds: an operator's command always; a
/// fresh trip unless the store already says open or disabled; a recovery, or a
/// reopening after a trial, never (a newer transition elsewhere wins).
fn insists(local: LocalChange, cluster: &ClusterState) -> bool {
    if local.is_command() {
        return true;
    }
    let fresh_trip = matches!(
        local.cause,
        TransitionCause::ConsecutiveFailures
            | TransitionCause::FailureRate
            | TransitionCause::SlowCallRate
    );
    // Not over an open, nor over an operator's disable.
    fresh_trip
        && local.state == State::Open
        && !matches!(
            cluster.state,
            Some(State::Open | State::ForcedOpen | State::Disabled)
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The store as a map, with a switch that makes it unreachable.
    #[derive(Default)]
    struct FakeStore {
        states: HashMap<String, ClusterState>,
        leases: HashMap<String, String>,
        counts: HashMap<String, crate::backend::ClusterCounts>,
        tripped: HashMap<String, Vec<String>>,
        configs: HashMap<String, crate::backend::SharedConfig>,
        down: bool,
        /// Answers reads, refuses writes (out of memory, a read-only
        /// replica).
        read_only: bool,
        publications: usize,
        /// Calls of any operation: each is a round trip to a real store.
        round_trips: usize,
    }

    #[derive(Clone, Copy)]
    enum Access {
        Read,
        Write,
    }

    impl FakeStore {
        /// One round trip: refused when the store is down, or read-only
        /// and asked to write.
        fn reach(&mut self, access: Access) -> Result<(), BackendError> {
            self.round_trips += 1;
            if self.read_only && matches!(access, Access::Write) {
                return Err("READONLY You can't write against a read only replica.".into());
            }
            if self.down {
                return Err("connection refused".into());
            }
            Ok(())
        }
    }

    impl Backend for &mut FakeStore {
        async fn publish(
            &mut self,
            name: &str,
            expected: u64,
            change: &Change,
            origin: &str,
        ) -> Result<Published, BackendError> {
            self.reach(Access::Write)?;
            let current = self
                .states
                .entry(name.to_owned())
                .or_insert_with(ClusterState::empty);
            if current.generation != expected {
                return Ok(Published::Lost(current.clone()));
            }
            if change.state == State::Open && change.quorum > 1 {
                let voters = self.tripped.entry(name.to_owned()).or_default();
                if !voters.iter().any(|voter| voter == origin) {
                    voters.push(origin.to_owned());
                }
                if voters.len() < change.quorum as usize {
                    return Ok(Published::Counted);
                }
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

        async fn exchange(
            &mut self,
            reports: &[(String, CountReport)],
            names: &[String],
        ) -> Result<crate::backend::Exchanged, BackendError> {
            self.reach(Access::Read)?;
            let mut exchanged = crate::backend::Exchanged::default();
            for (name, report) in reports {
                let counts = self.counts.entry(name.clone()).or_default();
                counts.consecutive = if report.succeeded {
                    report.consecutive
                } else {
                    counts.consecutive + report.failures
                };
                counts.calls += report.calls;
                counts.failures += report.failures;
                exchanged.counts.push(Some(*counts));
            }
            for name in names {
                exchanged.states.push(Some(
                    self.states
                        .get(name)
                        .cloned()
                        .unwrap_or_else(ClusterState::empty),
                ));
                exchanged.configs.push(self.configs.get(name).cloned());
            }
            Ok(exchanged)
        }

        async fn publish_config(
            &mut self,
            name: &str,
            config: &str,
            origin: &str,
        ) -> Result<u64, BackendError> {
            self.reach(Access::Write)?;
            let version = self.configs.get(name).map_or(0, |shared| shared.version) + 1;
            self.configs.insert(
                name.to_owned(),
                crate::backend::SharedConfig {
                    version,
                    origin: origin.to_owned(),
                    json: config.to_owned(),
                },
            );
            Ok(version)
        }

        async fn claim_trial(
            &mut self,
            name: &str,
            origin: &str,
            _lease: Duration,
        ) -> Result<bool, BackendError> {
            self.reach(Access::Write)?;
            let holder = self
                .leases
                .entry(name.to_owned())
                .or_insert_with(|| origin.to_owned());
            Ok(holder == origin)
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
            by_shared_counts: false,
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
                by_shared_counts: false,
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
                by_shared_counts: false,
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
        a.known.insert(
            "db".into(),
            Known {
                generation: 7,
                state: Some(State::Closed),
            },
        );
        block_on(a.round());
        assert_eq!(a.known["db"].generation, 0);
        a.registry.get("db").unwrap().record_failure();
        a.note_local("db", trip());
        block_on(a.round());
        drop(a);
        assert_eq!(
            store.states["db"].generation, 1,
            "published at the store's generation"
        );
    }

    fn shared_open(origin: &str) -> ClusterState {
        shared_in(State::Open, origin)
    }

    /// The shared view of a name that `origin` moved to `state`.
    fn shared_in(state: State, origin: &str) -> ClusterState {
        ClusterState {
            generation: 1,
            state: Some(state),
            open_for: Duration::from_secs(30),
            origin: origin.into(),
        }
    }

    fn counted<'s>(
        store: &'s mut FakeStore,
        id: &str,
        config: Config,
    ) -> Syncer<&'s mut FakeStore> {
        let registry: &'static Registry = Box::leak(Box::new(Registry::new()));
        registry.get_or_create("db", config);
        let mut syncer = Syncer::new(
            store,
            registry,
            id.to_owned(),
            vec!["db".to_owned()],
            Duration::from_secs(1),
            Arc::default(),
        );
        syncer.counted = vec!["db".to_owned()];
        syncer
    }

    #[test]
    fn failures_in_a_row_on_two_replicas_add_up_to_a_trip() {
        let mut store = FakeStore::default();
        let config = Config::builder().failure_threshold(4).build().unwrap();
        let (a_registry, b_registry);
        {
            let mut a = counted(&mut store, "a", config.clone());
            a_registry = a.registry;
            block_on(a.round());
            a_registry.get("db").unwrap().record_failure();
            a_registry.get("db").unwrap().record_failure();
            block_on(a.round());
            assert_eq!(
                a_registry.get("db").unwrap().state(),
                State::Closed,
                "2 of 4"
            );
        }
        {
            let mut b = counted(&mut store, "b", config.clone());
            b_registry = b.registry;
            block_on(b.round());
            b_registry.get("db").unwrap().record_failure();
            b_registry.get("db").unwrap().record_failure();
            block_on(b.round());
        }
        assert_eq!(
            b_registry.get("db").unwrap().state(),
            State::Open,
            "4 across both"
        );
        assert_eq!(store.states["db"].state, Some(State::Open), "published");
        let _ = a_registry;
    }

    #[test]
    fn a_round_without_news_is_one_round_trip_that_pushes_counts_and_pulls_the_view() {
        let mut store = FakeStore::default();
        let config = Config::builder().failure_threshold(10).build().unwrap();
        let mut a = counted(&mut store, "a", config);
        let breaker = a.registry.get("db").unwrap();
        block_on(a.round());
        breaker.record_failure();
        breaker.record_success();
        breaker.record_failure();
        a.backend.round_trips = 0;
        block_on(a.round());
        assert_eq!(a.backend.round_trips, 1, "one exchange");
        assert_eq!(
            a.backend.counts["db"],
            crate::backend::ClusterCounts {
                consecutive: 1,
                calls: 3,
                failures: 2,
            },
            "the outcomes since the last round, pushed"
        );
        // Another replica's trip, pulled by the next round's one exchange.
        a.backend.states.insert("db".into(), shared_open("b"));
        a.backend.round_trips = 0;
        block_on(a.round());
        assert_eq!(a.backend.round_trips, 1, "one exchange");
        assert_eq!(breaker.state(), State::Open, "the shared trip, applied");
    }

    #[test]
    fn a_success_on_a_replica_breaks_the_clusters_run_of_failures() {
        let mut store = FakeStore::default();
        let config = Config::builder().failure_threshold(3).build().unwrap();
        let mut a = counted(&mut store, "a", config);
        let breaker = a.registry.get("db").unwrap();
        block_on(a.round());
        breaker.record_failure();
        breaker.record_failure();
        block_on(a.round());
        breaker.record_success();
        breaker.record_failure();
        block_on(a.round());
        assert_eq!(
            breaker.state(),
            State::Closed,
            "one failure since the success"
        );
        drop(a);
        assert_eq!(store.counts["db"].consecutive, 1);
    }

    #[test]
    fn a_reconfiguration_on_one_replica_reaches_the_other_and_a_start_does_not() {
        let mut store = FakeStore::default();
        {
            let mut a = replica(&mut store, "a", Duration::from_secs(1));
            block_on(a.round());
            let seven = Config::builder().failure_threshold(7).build().unwrap();
            a.registry.configure("db", seven);
            block_on(a.round());
        }
        assert_eq!(
            store.configs["db"].version, 1,
            "one publication, not the start"
        );
        let shared = store.configs["db"].clone();

        let mut late = replica(&mut store, "late", Duration::from_secs(1));
        block_on(late.round());
        let threshold = late
            .registry
            .get("db")
            .unwrap()
            .config()
            .failure_threshold();
        assert_eq!(threshold, 1, "started after it: runs its own");
        drop(late);

        store.configs.clear();
        let mut b = replica(&mut store, "b", Duration::from_secs(1));
        block_on(b.round());
        b.backend.configs.insert("db".into(), shared);
        block_on(b.round());
        assert_eq!(
            b.registry.get("db").unwrap().config().failure_threshold(),
            7
        );
        block_on(b.round());
        drop(b);
        assert_eq!(
            store.configs["db"].version, 1,
            "applied, not published back"
        );
    }

    #[test]
    fn with_a_quorum_of_two_one_replicas_trip_stays_its_own() {
        let mut store = FakeStore::default();
        let b_registry;
        {
            let mut a = replica(&mut store, "a", Duration::from_secs(1));
            a.quorum = 2;
            a.registry.get("db").unwrap().record_failure();
            a.note_local("db", trip());
            block_on(a.round());
        }
        assert!(
            store
                .states
                .get("db")
                .is_none_or(|state| state.generation == 0),
            "not yet shared"
        );
        {
            let mut b = replica(&mut store, "b", Duration::from_secs(1));
            b.quorum = 2;
            b_registry = b.registry;
            b_registry.get("db").unwrap().record_failure();
            b.note_local("db", trip());
            block_on(b.round());
        }
        assert_eq!(
            store.states["db"].state,
            Some(State::Open),
            "two replicas tripped"
        );
        assert_eq!(store.states["db"].generation, 1);
    }

    #[test]
    fn a_trip_queued_while_another_replicas_trip_was_adopted_is_not_published_again() {
        let mut store = FakeStore::default();
        store.states.insert("db".into(), shared_open("b"));
        let mut a = replica(&mut store, "a", Duration::from_secs(1));
        a.registry.get("db").unwrap().record_failure();
        block_on(a.round());
        a.note_local("db", trip());
        block_on(a.round());
        drop(a);
        assert_eq!(store.states["db"].generation, 1, "one transition");
    }

    #[test]
    fn a_trip_undone_by_a_shared_reset_before_it_was_published_is_not_published() {
        let mut store = FakeStore::default();
        store
            .states
            .insert("db".into(), shared_in(State::Closed, "b"));
        let mut a = replica(&mut store, "a", Duration::from_secs(1));
        let breaker = a.registry.get("db").unwrap();
        breaker.record_failure();
        block_on(a.round());
        assert_eq!(breaker.state(), State::Closed, "the reset applied");
        a.note_local("db", trip());
        block_on(a.round());
        drop(a);
        assert_eq!(store.states["db"].state, Some(State::Closed));
        assert_eq!(store.publications, 0);
    }

    #[test]
    fn the_first_transition_of_a_new_history_is_applied() {
        let mut store = FakeStore::default();
        store.states.insert("db".into(), shared_open("b"));
        let mut a = replica(&mut store, "a", Duration::from_secs(1));
        a.known.insert(
            "db".into(),
            Known {
                generation: 7,
                state: Some(State::Closed),
            },
        );
        block_on(a.round());
        assert_eq!(a.registry.get("db").unwrap().state(), State::Open);
    }

    #[test]
    fn a_breaker_made_after_the_first_rounds_gets_the_shared_state() {
        let mut store = FakeStore::default();
        store.states.insert("late".into(), shared_open("b"));
        let registry: &'static Registry = Box::leak(Box::new(Registry::new()));
        let mut a = Syncer::new(
            &mut store,
            registry,
            "a".into(),
            vec!["late".into()],
            Duration::from_secs(1),
            Arc::default(),
        );
        block_on(a.round());
        let late = registry.get_or_create("late", Config::default());
        block_on(a.round());
        assert_eq!(late.state(), State::Open);
        assert!(late.trials_held(), "held like any shared breaker");
    }

    #[test]
    fn an_operators_command_made_while_degraded_is_published_on_return() {
        let mut store = FakeStore {
            down: true,
            ..FakeStore::default()
        };
        let mut a = replica(&mut store, "a", Duration::ZERO);
        block_on(a.round());
        assert!(a.status.degraded.load(Ordering::Relaxed));
        a.registry.get("db").unwrap().force_open();
        a.note_local(
            "db",
            LocalChange {
                state: State::ForcedOpen,
                cause: TransitionCause::ForcedOpen,
                by_shared_counts: false,
            },
        );
        a.note_local("db", trip());
        a.backend.down = false;
        block_on(a.round());
        drop(a);
        assert_eq!(store.states["db"].state, Some(State::ForcedOpen));
    }

    #[test]
    fn a_store_that_answers_reads_but_refuses_writes_is_not_rejoined_while_a_command_waits() {
        let mut store = FakeStore {
            down: true,
            ..FakeStore::default()
        };
        let mut a = replica(&mut store, "a", Duration::ZERO);
        let breaker = a.registry.get("db").unwrap();
        let changes = Arc::new(AtomicU64::new(0));
        let seen = Arc::clone(&changes);
        breaker.on_event(move |event| {
            if matches!(event, circuit_runtime::Event::Degraded(_)) {
                seen.fetch_add(1, Ordering::Relaxed);
            }
        });
        block_on(a.round());
        assert!(a.status.degraded.load(Ordering::Relaxed));
        breaker.force_open();
        a.note_local(
            "db",
            LocalChange {
                state: State::ForcedOpen,
                cause: TransitionCause::ForcedOpen,
                by_shared_counts: false,
            },
        );
        a.backend.down = false;
        a.backend.read_only = true;
        for _ in 0..5 {
            block_on(a.round());
        }
        assert!(a.status.degraded.load(Ordering::Relaxed), "still degraded");
        assert_eq!(
            changes.load(Ordering::Relaxed),
            1,
            "degraded once, no flapping"
        );
        a.backend.read_only = false;
        block_on(a.round());
        assert!(!a.status.degraded.load(Ordering::Relaxed), "rejoined");
        assert_eq!(changes.load(Ordering::Relaxed), 2);
        drop(a);
        assert_eq!(
            store.states["db"].state,
            Some(State::ForcedOpen),
            "published"
        );
    }

    #[test]
    fn a_stale_replicas_own_trip_does_not_undo_an_operators_disable() {
        let mut store = FakeStore::default();
        store
            .states
            .insert("db".into(), shared_in(State::Disabled, "operator"));
        let mut a = replica(&mut store, "a", Duration::from_secs(1));
        let breaker = a.registry.get("db").unwrap();
        breaker.record_failure();
        a.note_local("db", trip());
        block_on(a.round());
        assert_eq!(
            breaker.state(),
            State::Disabled,
            "the operator's disable, applied"
        );
        drop(a);
        assert_eq!(store.states["db"].state, Some(State::Disabled));
        assert_eq!(store.publications, 0);
    }
}
