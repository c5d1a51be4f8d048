//! Property test: the operations of tests/model.rs, one generated program
//! per thread, run at once on one breaker. Interleavings are not
//! reproducible, so this checks what must hold for every one of them:
//!
//! - no panic escapes but the injected ones, and those reach their caller;
//! - the monotonic counters are exactly what the threads saw: the calls
//!   that ran, by how they ended, and the rejections;
//! - no half-open period ever has more than `half_open_max_calls` trials in
//!   flight;
//! - the transitions the hook saw chain from `Closed` to the final state,
//!   each allowed by the state diagram, and they are the ones the
//!   transition counters count;
//! - once the threads are done, a reset leaves nothing behind: a fixed
//!   program then agrees step by step with a fresh `Model`.

mod common;

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex, PoisonError};
use std::thread::ScopedJoinHandle;
use std::time::Duration;

use circuit_runtime::{
    CircuitBreaker, CircuitOpenError, ManualClock, Metrics, State, Transition, TransitionCause,
};
use proptest::prelude::*;

use common::model::{nanos, Model, Options, Verdict};
use common::ops::{op_mix, options, AsyncEnd, Ending, Op, PermitEnd};
use common::runner::{check_against_model, describe, silence_injected_panics, Probe, Runner, Step};

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

thread_local! {
    /// How many half-open periods this thread has seen begun, through the
    /// hook's count: a lower bound on the period of any state it reads
    /// afterwards (each hook runs after its transition is published).
    static SEEN_HALF_OPEN: Cell<u64> = const { Cell::new(0) };
}

/// Counts the trials in flight of each half-open period.
///
/// The period of a trial is not visible from outside, so it is pinned
/// between two bounds: the half-open periods the thread had seen begun
/// before it asked (`SEEN_HALF_OPEN`, raised by the hook when the call's
/// own admission opened a period), and `times_half_opened` read after the
/// admission, which counts every period published by then. When the bounds
/// meet, the trial is that period's; when a half-open transition raced the
/// admission they differ, and the trial is left uncounted. Counting every
/// trial in one number would be wrong: trials of a period that timed out
/// may still run when the next period admits its own.
struct TrialLedger<'b> {
    breaker: &'b CircuitBreaker,
    half_open_max_calls: u32,
    /// Hooks that saw a transition into `HalfOpen`.
    half_opened: Arc<AtomicU64>,
    in_flight: Mutex<HashMap<u64, u32>>,
    violations: Mutex<Vec<String>>,
}

impl Probe for TrialLedger<'_> {
    fn before_acquire(&self) {
        SEEN_HALF_OPEN.with(|seen| seen.set(self.half_opened.load(Ordering::SeqCst)));
    }

    fn body_starts(&self, admitted_in: Option<State>) -> Option<u64> {
        // A call's body cannot see its permit: the state it reads is the
        // one it was admitted in when the bounds below meet, since any
        // other admission would be separated from it by a half-open
        // transition between the bounds.
        let state = admitted_in.unwrap_or_else(|| self.breaker.state());
        if state != State::HalfOpen {
            return None;
        }
        let at_most = self.breaker.metrics().times_half_opened;
        let at_least = SEEN_HALF_OPEN.with(Cell::get);
        if at_least != at_most {
            return None;
        }
        let mut in_flight = lock(&self.in_flight);
        let trials = in_flight.entry(at_most).or_default();
        *trials += 1;
        if *trials > self.half_open_max_calls {
            lock(&self.violations).push(format!(
                "half-open period {at_most} has {trials} trials in flight, at most {} allowed",
                self.half_open_max_calls
            ));
        }
        Some(at_most)
    }

    fn body_ends(&self, period: Option<u64>) {
        if let Some(period) = period {
            if let Some(trials) = lock(&self.in_flight).get_mut(&period) {
                *trials -= 1;
            }
        }
    }
}

/// What one thread saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Tally {
    successful: u64,
    failed: u64,
    ignored: u64,
    rejected: u64,
}

impl Tally {
    fn add(self, other: Tally) -> Tally {
        Tally {
            successful: self.successful + other.successful,
            failed: self.failed + other.failed,
            ignored: self.ignored + other.ignored,
            rejected: self.rejected + other.rejected,
        }
    }

    fn of(metrics: &Metrics) -> Tally {
        Tally {
            successful: metrics.successful_calls,
            failed: metrics.failed_calls,
            ignored: metrics.ignored_calls,
            rejected: metrics.rejected_calls,
        }
    }
}

fn run_thread(
    breaker: &CircuitBreaker,
    clock: &ManualClock,
    ledger: &TrialLedger<'_>,
    program: &[Op],
    start: &Barrier,
) -> Result<Tally, String> {
    let mut runner = Runner::new(breaker, clock, ledger);
    let mut tally = Tally::default();
    start.wait();
    for op in program {
        match runner
            .step(op)
            .map_err(|message| format!("{op:?}: {message}"))?
        {
            Step::Rejected(rejection) => {
                check_rejection(&rejection).map_err(|message| format!("{op:?}: {message}"))?;
                tally.rejected += 1;
            }
            Step::Holding(Some(state)) if state.rejects_calls() && state != State::HalfOpen => {
                return Err(format!("{op:?}: a permit admitted in {state:?}"));
            }
            Step::Ended(Verdict::Success) => tally.successful += 1,
            Step::Ended(Verdict::Failure) => tally.failed += 1,
            Step::Ended(Verdict::Ignored) => tally.ignored += 1,
            Step::Ended(Verdict::Cancelled) | Step::Holding(_) | Step::Other => {}
        }
        // More interleavings on few cores.
        std::thread::yield_now();
    }
    runner.cancel_all();
    Ok(tally)
}

/// A rejection says when to retry exactly when the breaker is open. (Not
/// how long: a rejecting call reads the clock before the open period's end,
/// so a period that began meanwhile, on a clock moved meanwhile, can make
/// `retry_after` longer than any open time.)
fn check_rejection(rejection: &CircuitOpenError) -> Result<(), String> {
    match (rejection.state(), rejection.retry_after()) {
        (State::Open, Some(_)) | (State::HalfOpen | State::ForcedOpen, None) => Ok(()),
        _ => Err(format!("rejected with {rejection:?}")),
    }
}

/// Whether the state diagram allows `transition`.
fn allowed(transition: &Transition) -> bool {
    use State::{Closed, Disabled, ForcedOpen, HalfOpen, Open};
    let edge = (transition.from, transition.to);
    transition.from != transition.to
        && match transition.cause {
            TransitionCause::ConsecutiveFailures
            | TransitionCause::FailureRate
            | TransitionCause::SlowCallRate => edge == (Closed, Open),
            TransitionCause::RecoveryTimeoutElapsed => edge == (Open, HalfOpen),
            TransitionCause::TrialsSucceeded => edge == (HalfOpen, Closed),
            TransitionCause::TrialFailed | TransitionCause::HalfOpenTimeout => {
                edge == (HalfOpen, Open)
            }
            TransitionCause::Reset => transition.to == Closed,
            TransitionCause::ForcedOpen => transition.to == ForcedOpen,
            TransitionCause::Disabled => transition.to == Disabled,
            _ => false,
        }
}

const STATES: [State; 5] = [
    State::Closed,
    State::Open,
    State::HalfOpen,
    State::ForcedOpen,
    State::Disabled,
];

fn index(state: State) -> usize {
    STATES
        .iter()
        .position(|&known| known == state)
        .expect("every state is listed")
}

fn root(parent: &[usize; 5], mut state: usize) -> usize {
    while parent[state] != state {
        state = parent[state];
    }
    state
}

/// Where a chain through all of `edges`, in some order, from `start` must
/// end, or `None` when no order chains: an Euler path. Every state but the
/// two ends is entered as often as it is left, the start left once more
/// and the end entered once more (or neither, when the chain comes back),
/// and all edges hang together with the start.
fn chain_end(start: State, edges: &[(State, State)]) -> Option<State> {
    if edges.is_empty() {
        return Some(start);
    }
    let mut balance = [0i64; 5];
    // Union-find over the five states, for the edges hanging together.
    let mut parent = [0, 1, 2, 3, 4];
    for &(from, to) in edges {
        balance[index(from)] += 1;
        balance[index(to)] -= 1;
        let (a, b) = (root(&parent, index(from)), root(&parent, index(to)));
        parent[a] = b;
    }
    let unbalanced: Vec<usize> = (0..STATES.len())
        .filter(|&state| state != index(start) && balance[state] != 0)
        .collect();
    let end = match (balance[index(start)], unbalanced.as_slice()) {
        (0, []) => start,
        (1, &[end]) if balance[end] == -1 => STATES[end],
        _ => return None,
    };
    let component = root(&parent, index(start));
    edges
        .iter()
        .all(|&(from, _)| root(&parent, index(from)) == component)
        .then_some(end)
}

/// Replays the hook's log from `Closed` and returns where it ends.
///
/// Hooks run after the transition mutex is released, so two transitions
/// made close together can reach the hook in either order: only their
/// times (read under the mutex, from a clock that never goes back) order
/// them. Within one instant, any order that chains is accepted.
fn replay(log: &[Transition]) -> Result<State, String> {
    if let Some(wrong) = log.iter().find(|transition| !allowed(transition)) {
        return Err(format!("the state diagram has no {wrong:?}"));
    }
    let mut ordered: Vec<&Transition> = log.iter().collect();
    ordered.sort_by_key(|transition| transition.at);
    let mut state = State::Closed;
    for instant in ordered.chunk_by(|a, b| a.at == b.at) {
        let edges: Vec<(State, State)> = instant.iter().map(|t| (t.from, t.to)).collect();
        state = chain_end(state, &edges)
            .ok_or_else(|| format!("no order of {edges:?} chains on from {state:?}"))?;
    }
    Ok(state)
}

/// A program that touches everything a reset must clear: the consecutive
/// failures, the window, the trial slots, the open time.
fn after_reset_program(options: &Options) -> Vec<Op> {
    let call = |ending| Op::Call {
        ending,
        takes: Duration::ZERO,
        classified: true,
    };
    let times = |op: Op, count: u32| std::iter::repeat(op).take(count as usize);
    let slots = options.half_open_max_calls + 1;
    let mut program = vec![call(Ending::Success)];
    program.extend(times(call(Ending::Failure), options.failure_threshold));
    program.push(Op::Advance(options.max_recovery_timeout));
    program.extend(times(Op::Acquire, slots));
    program.extend(times(
        Op::Settle {
            index: 0,
            end: PermitEnd::Success,
        },
        slots,
    ));
    program.extend(times(call(Ending::Success), options.success_threshold));
    program.push(Op::StartAsync { classified: true });
    program.push(Op::FinishAsync {
        index: 0,
        end: AsyncEnd::Complete(Ending::Failure),
    });
    program
}

fn run(options: &Options, tripped: bool, programs: &[Vec<Op>]) -> Result<(), TestCaseError> {
    let clock = ManualClock::new();
    let origin = clock.now();
    let breaker = CircuitBreaker::new("concurrent", options.config(&clock));
    let log = Arc::new(Mutex::new(Vec::new()));
    let half_opened = Arc::new(AtomicU64::new(0));
    {
        let log = Arc::clone(&log);
        let half_opened = Arc::clone(&half_opened);
        breaker.on_transition(move |transition| {
            lock(&log).push(transition.clone());
            if transition.to == State::HalfOpen {
                let seen = half_opened.fetch_add(1, Ordering::SeqCst) + 1;
                SEEN_HALF_OPEN.with(|cell| cell.set(cell.get().max(seen)));
            }
        });
    }
    let ledger = TrialLedger {
        breaker: &breaker,
        half_open_max_calls: options.half_open_max_calls,
        half_opened,
        in_flight: Mutex::new(HashMap::new()),
        violations: Mutex::new(Vec::new()),
    };
    let mut seen = Tally::default();
    if tripped {
        // The threads start by racing for the first half-open period.
        for _ in 0..options.failure_threshold {
            breaker.record_failure();
        }
        seen.failed += u64::from(options.failure_threshold);
        clock.advance(options.max_recovery_timeout);
    }
    let start = Barrier::new(programs.len());
    let results: Vec<_> = std::thread::scope(|scope| {
        let threads: Vec<_> = programs
            .iter()
            .map(|program| scope.spawn(|| run_thread(&breaker, &clock, &ledger, program, &start)))
            .collect();
        threads.into_iter().map(ScopedJoinHandle::join).collect()
    });

    for (thread, result) in results.into_iter().enumerate() {
        match result {
            Ok(Ok(tally)) => seen = seen.add(tally),
            Ok(Err(message)) => prop_assert!(false, "thread {thread}: {message}"),
            Err(payload) => {
                prop_assert!(false, "thread {thread} panicked: {}", describe(&*payload));
            }
        }
    }
    let violations = lock(&ledger.violations).clone();
    prop_assert!(violations.is_empty(), "{:?}", violations);

    let metrics = breaker.metrics();
    prop_assert_eq!(
        metrics.total_calls,
        metrics.successful_calls + metrics.failed_calls + metrics.ignored_calls
    );
    prop_assert_eq!(
        Tally::of(&metrics),
        seen,
        "the counters against what the threads saw"
    );
    prop_assert!(metrics.slow_calls <= metrics.total_calls);

    let log = lock(&log).clone();
    let end = replay(&log).map_err(TestCaseError::fail)?;
    // An open period that has run out reads as the trial the next call
    // would be: the transitions lead to `Open`, `state()` says `HalfOpen`.
    let observed = breaker.state();
    prop_assert!(
        observed == end || (end == State::Open && observed == State::HalfOpen),
        "where the transitions lead: {:?}, observed {:?}: {:?}",
        end,
        observed,
        log
    );
    let into = |state: State| log.iter().filter(|t| t.to == state).count() as u64;
    prop_assert_eq!(
        metrics.times_opened,
        into(State::Open),
        "times_opened: {:?}",
        log
    );
    prop_assert_eq!(metrics.times_half_opened, into(State::HalfOpen));
    prop_assert_eq!(metrics.times_closed, into(State::Closed));

    breaker.reset();
    let elapsed = nanos(clock.now().duration_since(origin));
    let mut model = Model::after_reset(options.clone(), elapsed, &breaker.metrics(), origin);
    check_against_model(
        &breaker,
        &clock,
        origin,
        &mut model,
        &after_reset_program(options),
    )
}

proptest! {
    #![proptest_config(common::proptest_config(256))]

    #[test]
    fn every_interleaving_keeps_the_invariants(
        options in options(),
        tripped in any::<bool>(),
        programs in proptest::collection::vec(proptest::collection::vec(op_mix(6), 1..16), 2..=4),
    ) {
        silence_injected_panics();
        run(&options, tripped, &programs)?;
    }
}
