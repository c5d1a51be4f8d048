//! What the sync asks of the shared store, behind a trait: Redis in
//! production, a fake in the sync logic's unit tests.

use std::future::Future;
use std::time::Duration;

use circuit_runtime::State;

/// The shared view of one breaker name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ClusterState {
    /// The fencing token: incremented by every published transition, 0
    /// while no replica has published one (or the store forgot them).
    pub(crate) generation: u64,
    /// The state the last published transition entered; `None` at
    /// generation 0.
    pub(crate) state: Option<State>,
    /// For an open state, the time left of its open period, on the
    /// store's clock.
    pub(crate) open_for: Duration,
    /// The replica that published it.
    pub(crate) origin: String,
}

impl ClusterState {
    /// No replica has published anything.
    #[cfg(test)]
    pub(crate) fn empty() -> Self {
        Self {
            generation: 0,
            state: None,
            open_for: Duration::ZERO,
            origin: String::new(),
        }
    }
}

/// A local transition to publish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Change {
    pub(crate) state: State,
    /// The open period's length, for an open state.
    pub(crate) open_for: Duration,
    /// For a trip: how many replicas must have tripped (within an open
    /// period of each other) before the store takes it; 1 for at once.
    pub(crate) quorum: u32,
}

/// One replica's outcomes of a closed period since its last report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct CountReport {
    /// Calls that ended in a success or a failure.
    pub(crate) calls: u64,
    pub(crate) failures: u64,
    /// Whether a call succeeded since the last report; the replica's own
    /// failures in a row since then are `consecutive`.
    pub(crate) succeeded: bool,
    pub(crate) consecutive: u64,
    /// The time window the rates are judged over, if the breaker has one.
    pub(crate) window: Option<Duration>,
}

/// The whole cluster's counts of a name's closed period.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ClusterCounts {
    /// Failures in a row, across replicas (stale by a sync interval).
    pub(crate) consecutive: u64,
    /// Calls and failures within the time window.
    pub(crate) calls: u64,
    pub(crate) failures: u64,
}

/// A configuration one replica shared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SharedConfig {
    pub(crate) version: u64,
    pub(crate) origin: String,
    pub(crate) json: String,
}

/// What one [`exchange`](Backend::exchange) brings back.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Exchanged {
    /// The cluster's counts of each reported name, in the reports' order;
    /// `None` where the store refused that name's report.
    pub(crate) counts: Vec<Option<ClusterCounts>>,
    /// The shared view of each name, in the names' order; `None` where
    /// the store could not read it.
    pub(crate) states: Vec<Option<ClusterState>>,
    /// The shared configuration of each name, in the names' order: its
    /// version, the replica that published it, and its JSON; `None` for a
    /// name never reconfigured, or whose configuration could not be read.
    pub(crate) configs: Vec<Option<SharedConfig>>,
    /// What the store refused, name by name: one name's damaged key (an
    /// operator's stray write) must not stop every other name's sync.
    pub(crate) refusals: Vec<BackendError>,
}

/// How a publication ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Published {
    /// The store took it: the name is now at this generation.
    Won(u64),
    /// The store had moved past the generation the replica knew: nothing
    /// was written, and this is what the store holds.
    Lost(ClusterState),
    /// The trip was counted toward its quorum, which it has not reached:
    /// the store still holds what it held.
    Counted,
}

/// The shared store's error, as the sync reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct BackendError {
    pub(crate) message: String,
    /// Only the keys of the name asked about are at fault (one of the
    /// wrong type, or with contents the scripts cannot read: an
    /// operator's stray write): that name's sync stops until they are
    /// fixed, every other name's goes on.
    pub(crate) name_only: bool,
}

impl BackendError {
    /// A fault of one name's keys, not of the store.
    pub(crate) fn of_name(name: &str, problem: impl std::fmt::Display) -> Self {
        Self {
            message: format!("{name}: {problem}"),
            name_only: true,
        }
    }
}

impl From<String> for BackendError {
    fn from(message: String) -> Self {
        Self {
            message,
            name_only: false,
        }
    }
}

impl From<&str> for BackendError {
    fn from(message: &str) -> Self {
        message.to_owned().into()
    }
}

impl std::fmt::Display for BackendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The operations the sync needs, each one round trip. A round without
/// news is one [`exchange`](Backend::exchange); the others are made only
/// when there is something to publish or a trial to claim.
pub(crate) trait Backend {
    /// Publishes `change` to `name` if the store is still at generation
    /// `expected` (a compare-and-set on the fencing token), as replica
    /// `origin`.
    fn publish(
        &mut self,
        name: &str,
        expected: u64,
        change: &Change,
        origin: &str,
    ) -> impl Future<Output = Result<Published, BackendError>>;

    /// One exchange with the store, in one pipelined round trip: adds
    /// each counted name's outcomes since its last report to its shared
    /// counts, and reads the shared view and configuration of every name
    /// in `names`.
    fn exchange(
        &mut self,
        reports: &[(String, CountReport)],
        names: &[String],
    ) -> impl Future<Output = Result<Exchanged, BackendError>>;

    /// Publishes `config` (JSON) as `name`'s shared configuration, as
    /// replica `origin`; returns its version.
    fn publish_config(
        &mut self,
        name: &str,
        config: &str,
        origin: &str,
    ) -> impl Future<Output = Result<u64, BackendError>>;

    /// Claims the right to run `name`'s trials for `lease`, as replica
    /// `origin`: granted if no other replica holds it (a lease `origin`
    /// already holds is renewed).
    fn claim_trial(
        &mut self,
        name: &str,
        origin: &str,
        lease: Duration,
    ) -> impl Future<Output = Result<bool, BackendError>>;
}

/// The wire name of a state.
pub(crate) fn state_name(state: State) -> &'static str {
    state.as_str()
}

/// The state a wire name names; `None` for an empty or unknown one.
pub(crate) fn state_from_name(name: &str) -> Option<State> {
    [
        State::Closed,
        State::Open,
        State::HalfOpen,
        State::ForcedOpen,
        State::Disabled,
    ]
    .into_iter()
    .find(|state| state.as_str() == name)
}
