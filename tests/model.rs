//! Property test: random programs of operations run against the real breaker
//! and against `Model`, a deliberately plain single-threaded restatement of
//! the rules in the README. After every step the state, the rejection's
//! `retry_after` and every metric must agree.
//!
//! The model is written from the rules, not from the implementation: where
//! the two disagree, one of them misreads the rules.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use circuit_runtime::{CallError, CircuitBreaker, Config, ManualClock, Metrics, Permit, State};
use proptest::prelude::*;

/// The options the model understands (jitter stays 0 so open times are
/// predictable; a separate test bounds jittered times).
#[derive(Clone, Debug)]
struct Options {
    failure_threshold: u32,
    success_threshold: u32,
    half_open_max_calls: u32,
    recovery_timeout: Duration,
    failure_rate_threshold: Option<f64>,
    window: Window,
    minimum_calls: u32,
    slow_call_duration: Option<Duration>,
    slow_call_rate_threshold: Option<f64>,
    recovery_backoff: f64,
    max_recovery_timeout: Duration,
    half_open_timeout: Duration,
}

#[derive(Clone, Copy, Debug)]
enum Window {
    Calls(u32),
    Span(Duration),
}

impl Options {
    fn config(&self, clock: &ManualClock) -> Config {
        let mut builder = Config::builder()
            .failure_threshold(self.failure_threshold)
            .success_threshold(self.success_threshold)
            .half_open_max_calls(self.half_open_max_calls)
            .recovery_timeout(self.recovery_timeout)
            .minimum_calls(self.minimum_calls)
            .recovery_backoff(self.recovery_backoff)
            .max_recovery_timeout(self.max_recovery_timeout)
            .half_open_timeout(self.half_open_timeout)
            .clock(clock.clone());
        builder = match self.window {
            Window::Calls(size) => builder.window_size(size),
            Window::Span(span) => builder.window_duration(span),
        };
        if let Some(rate) = self.failure_rate_threshold {
            builder = builder.failure_rate_threshold(rate);
        }
        if let Some(slow) = self.slow_call_duration {
            builder = builder.slow_call_duration(slow);
        }
        if let Some(rate) = self.slow_call_rate_threshold {
            builder = builder.slow_call_rate_threshold(rate);
        }
        builder
            .build()
            .expect("the strategy only generates valid options")
    }
}

fn millis(range: std::ops::RangeInclusive<u64>) -> impl Strategy<Value = Duration> {
    range.prop_map(|tenths| Duration::from_millis(tenths * 100))
}

fn rate() -> impl Strategy<Value = f64> {
    prop_oneof![Just(0.25), Just(0.5), Just(0.6), Just(1.0)]
}

prop_compose! {
    fn options()(
        failure_threshold in 1u32..=5,
        success_threshold in 1u32..=3,
        half_open_max_calls in 1u32..=3,
        recovery_timeout in millis(1..=30),
        failure_rate_threshold in proptest::option::of(rate()),
        window in prop_oneof![
            (1u32..=8).prop_map(Window::Calls),
            millis(1..=60).prop_map(Window::Span),
        ],
        minimum_fraction in 0.0f64..=1.0,
        slow in proptest::option::of((millis(1..=10), proptest::option::of(rate()))),
        recovery_backoff in prop_oneof![Just(1.0), Just(1.5), Just(2.0)],
        max_factor in 1u32..=4,
        half_open_timeout in millis(1..=50),
    ) -> Options {
        let window_cap = match window { Window::Calls(size) => size, Window::Span(_) => 8 };
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
        let minimum_calls = ((f64::from(window_cap) * minimum_fraction).ceil() as u32).clamp(1, window_cap);
        Options {
            failure_threshold,
            success_threshold,
            half_open_max_calls,
            recovery_timeout,
            failure_rate_threshold,
            window,
            minimum_calls,
            slow_call_duration: slow.map(|(duration, _)| duration),
            slow_call_rate_threshold: slow.and_then(|(_, rate)| rate),
            recovery_backoff,
            max_recovery_timeout: recovery_timeout * max_factor,
            half_open_timeout,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Success,
    Failure,
    Ignored,
    /// Dropped without a verdict: a cancellation.
    Drop,
    /// Dropped while the thread panics.
    Panic,
}

#[derive(Clone, Debug)]
enum Op {
    /// A whole call that takes `takes` on the clock and ends with `verdict`.
    Call {
        verdict: Verdict,
        takes: Duration,
    },
    /// Acquire a permit and hold it.
    Acquire,
    /// Give a held permit (chosen by index) its verdict.
    Settle {
        index: usize,
        verdict: Verdict,
    },
    Advance(Duration),
    RecordSuccess,
    RecordFailure,
    Reset,
    ForceOpen,
    Disable,
}

fn verdict() -> impl Strategy<Value = Verdict> {
    prop_oneof![
        4 => Just(Verdict::Success),
        4 => Just(Verdict::Failure),
        1 => Just(Verdict::Ignored),
        1 => Just(Verdict::Drop),
        1 => Just(Verdict::Panic),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => (verdict(), millis(0..=12)).prop_map(|(verdict, takes)| Op::Call { verdict, takes }),
        3 => Just(Op::Acquire),
        3 => (any::<usize>(), verdict()).prop_map(|(index, verdict)| Op::Settle { index, verdict }),
        5 => millis(0..=40).prop_map(Op::Advance),
        1 => Just(Op::RecordSuccess),
        1 => Just(Op::RecordFailure),
        1 => Just(Op::Reset),
        1 => Just(Op::ForceOpen),
        1 => Just(Op::Disable),
    ]
}

/// How the model admitted a call.
#[derive(Clone, Copy, Debug)]
struct Admitted {
    generation: u64,
    state: State,
    trial: bool,
    started: Duration,
}

/// The rules, restated as plainly as possible. Times are durations since
/// the breaker was created.
#[derive(Debug)]
struct Model {
    options: Options,
    now: Duration,
    state: State,
    generation: u64,
    entered_at: Option<Duration>,
    open_until: Duration,
    open_for: Duration,
    consecutive_failures: u32,
    trials_in_flight: u32,
    trial_successes: u32,
    /// (bucket or sequence, failed, slow) of the current closed period.
    window: VecDeque<(u64, bool, bool)>,
    metrics: Metrics,
    last_failure_at: Option<Duration>,
}

impl Model {
    fn new(options: Options) -> Self {
        Model {
            open_for: options.recovery_timeout,
            options,
            now: Duration::ZERO,
            state: State::Closed,
            generation: 0,
            entered_at: None,
            open_until: Duration::ZERO,
            consecutive_failures: 0,
            trials_in_flight: 0,
            trial_successes: 0,
            window: VecDeque::new(),
            metrics: Metrics::default(),
            last_failure_at: None,
        }
    }

    fn keeps_window(&self) -> bool {
        self.options.failure_rate_threshold.is_some()
            || self.options.slow_call_rate_threshold.is_some()
    }

    /// The time window moves in tenths of its span.
    fn bucket(&self, at: Duration) -> u64 {
        match self.options.window {
            Window::Span(span) => {
                let width = (span.as_nanos() / 10).max(1);
                // The breaker counts time from 1ns after its creation.
                u64::try_from((at.as_nanos() + 1) / width).unwrap()
            }
            Window::Calls(_) => 0,
        }
    }

    /// The outcomes the window holds now: (calls, failures, slow).
    fn tally(&self) -> (u64, u64, u64) {
        let current = self.bucket(self.now);
        let held = self
            .window
            .iter()
            .filter(|(bucket, _, _)| match self.options.window {
                Window::Calls(_) => true,
                Window::Span(_) => *bucket + 9 >= current,
            });
        held.fold(
            (0, 0, 0),
            |(calls, failures, slow), (_, failed, was_slow)| {
                (
                    calls + 1,
                    failures + u64::from(*failed),
                    slow + u64::from(*was_slow),
                )
            },
        )
    }

    fn transition(&mut self, to: State) {
        let from = self.state;
        match to {
            State::Open => {
                if from == State::HalfOpen {
                    self.open_for = self
                        .open_for
                        .mul_f64(self.options.recovery_backoff)
                        .min(self.options.max_recovery_timeout);
                }
                self.open_until = self.now + self.open_for;
                self.metrics.times_opened += 1;
            }
            State::HalfOpen => self.metrics.times_half_opened += 1,
            State::Closed => {
                self.open_for = self.options.recovery_timeout;
                self.window.clear();
                if from != State::Closed {
                    self.metrics.times_closed += 1;
                }
            }
            State::ForcedOpen | State::Disabled => {}
        }
        self.state = to;
        self.generation += 1;
        self.entered_at = Some(self.now);
        self.consecutive_failures = 0;
        self.trials_in_flight = 0;
        self.trial_successes = 0;
    }

    fn acquire(&mut self) -> Result<Admitted, Option<Duration>> {
        loop {
            match self.state {
                State::Closed | State::Disabled => {
                    return Ok(self.admitted(false));
                }
                State::ForcedOpen => return Err(self.reject(None)),
                State::Open if self.now < self.open_until => {
                    return Err(self.reject(Some(self.open_until - self.now)));
                }
                State::Open => self.transition(State::HalfOpen),
                State::HalfOpen => {
                    let entered_at = self.entered_at.unwrap_or_default();
                    if self.now - entered_at >= self.options.half_open_timeout {
                        self.transition(State::Open);
                    } else if self.trials_in_flight < self.options.half_open_max_calls {
                        self.trials_in_flight += 1;
                        return Ok(self.admitted(true));
                    } else {
                        return Err(self.reject(None));
                    }
                }
            }
        }
    }

    fn admitted(&self, trial: bool) -> Admitted {
        Admitted {
            generation: self.generation,
            state: self.state,
            trial,
            started: self.now,
        }
    }

    fn reject(&mut self, retry_after: Option<Duration>) -> Option<Duration> {
        self.metrics.rejected_calls += 1;
        retry_after
    }

    fn settle(&mut self, admitted: Admitted, verdict: Verdict) {
        let slow = verdict != Verdict::Drop
            && self
                .options
                .slow_call_duration
                .is_some_and(|slow| self.now - admitted.started >= slow);
        let failed = matches!(verdict, Verdict::Failure | Verdict::Panic);
        match verdict {
            Verdict::Success => self.metrics.successful_calls += 1,
            Verdict::Failure | Verdict::Panic => self.metrics.failed_calls += 1,
            Verdict::Ignored => self.metrics.ignored_calls += 1,
            Verdict::Drop => {}
        }
        if verdict != Verdict::Drop {
            self.metrics.total_calls += 1;
        }
        self.metrics.slow_calls += u64::from(slow);
        if failed {
            self.last_failure_at = Some(self.now);
        }
        if admitted.generation != self.generation {
            return; // an outcome of an earlier period changes nothing now
        }
        match (admitted.state, verdict) {
            (State::Closed, Verdict::Success | Verdict::Failure | Verdict::Panic) => {
                if failed {
                    self.consecutive_failures += 1;
                    if self.consecutive_failures >= self.options.failure_threshold {
                        self.transition(State::Open);
                        return;
                    }
                } else {
                    self.consecutive_failures = 0;
                }
                self.record_in_window(failed, slow);
            }
            (State::HalfOpen, _) => {
                if admitted.trial {
                    self.trials_in_flight -= 1;
                }
                if failed {
                    self.transition(State::Open);
                } else if verdict == Verdict::Success {
                    self.trial_successes += 1;
                    if self.trial_successes >= self.options.success_threshold {
                        self.transition(State::Closed);
                    }
                }
            }
            _ => {}
        }
    }

    fn record_in_window(&mut self, failed: bool, slow: bool) {
        if !self.keeps_window() {
            return;
        }
        let key = self.bucket(self.now);
        self.window.push_back((key, failed, slow));
        if let Window::Calls(size) = self.options.window {
            while self.window.len() > size as usize {
                self.window.pop_front();
            }
        }
        let (calls, failures, slow_calls) = self.tally();
        if calls < u64::from(self.options.minimum_calls) {
            return;
        }
        #[allow(clippy::cast_precision_loss)]
        let reached = |part: u64, threshold: Option<f64>| {
            threshold.is_some_and(|threshold| part as f64 / calls as f64 >= threshold)
        };
        if reached(failures, self.options.failure_rate_threshold)
            || reached(slow_calls, self.options.slow_call_rate_threshold)
        {
            self.transition(State::Open);
        }
    }

    /// What `CircuitBreaker::metrics` should say now.
    fn expected_metrics(&self, origin: Instant) -> Metrics {
        let mut expected = self.metrics.clone();
        expected.consecutive_failures = if self.state == State::Closed {
            self.consecutive_failures
        } else {
            0
        };
        let (calls, failures, slow) = self.tally();
        #[allow(clippy::cast_precision_loss)]
        let rate =
            |part: u64| (self.keeps_window() && calls > 0).then(|| part as f64 / calls as f64);
        expected.failure_rate = rate(failures);
        expected.slow_call_rate = rate(slow);
        expected.last_failure_at = self.last_failure_at.map(|at| origin + at);
        expected.last_transition_at = self.entered_at.map(|at| origin + at);
        expected
    }
}

/// Runs `verdict` on a real permit the way a user's code would end it.
fn end(permit: Permit<'_>, verdict: Verdict) {
    match verdict {
        Verdict::Success => permit.record_success(),
        Verdict::Failure => permit.record_failure(),
        Verdict::Ignored => permit.record_ignored(),
        Verdict::Drop => drop(permit),
        Verdict::Panic => {
            let unwound = catch_unwind(AssertUnwindSafe(move || {
                let _held = permit;
                std::panic::resume_unwind(Box::new("the call panicked"));
            }));
            assert!(unwound.is_err());
        }
    }
}

fn run(options: &Options, program: &[Op]) -> Result<(), TestCaseError> {
    let clock = ManualClock::new();
    let origin = clock.now();
    let breaker = CircuitBreaker::new("model", options.config(&clock));
    let mut model = Model::new(options.clone());
    let mut held: Vec<(Permit<'_>, Admitted)> = Vec::new();

    for (step, op) in program.iter().enumerate() {
        match op.clone() {
            Op::Call { verdict, takes } => {
                let expected = model.acquire();
                let ran = std::cell::Cell::new(false);
                let body = || {
                    ran.set(true);
                    clock.advance(takes);
                    match verdict {
                        Verdict::Success => Ok(()),
                        Verdict::Failure | Verdict::Ignored => Err(verdict),
                        Verdict::Drop | Verdict::Panic => {
                            std::panic::resume_unwind(Box::new("boom"))
                        }
                    }
                };
                let outcome = catch_unwind(AssertUnwindSafe(|| {
                    breaker.call_with(|err: &Verdict| *err == Verdict::Failure, body)
                }));
                match expected {
                    Ok(admitted) => {
                        prop_assert!(ran.get(), "step {step}: the call should have run");
                        model.now += takes;
                        // A call's body cannot end in a cancellation: a
                        // "dropped" call unwinds like a panic.
                        let verdict = if verdict == Verdict::Drop {
                            Verdict::Panic
                        } else {
                            verdict
                        };
                        model.settle(admitted, verdict);
                    }
                    Err(retry_after) => {
                        prop_assert!(!ran.get(), "step {step}: a rejected call must not run");
                        match outcome {
                            Ok(Err(CallError::Rejected(open))) => {
                                prop_assert_eq!(open.retry_after(), retry_after, "step {}", step);
                            }
                            other => prop_assert!(
                                false,
                                "step {step}: expected a rejection, got {other:?}"
                            ),
                        }
                    }
                }
            }
            Op::Acquire => match (model.acquire(), breaker.try_acquire()) {
                (Ok(admitted), Ok(permit)) => held.push((permit, admitted)),
                (Err(retry_after), Err(open)) => {
                    prop_assert_eq!(open.retry_after(), retry_after, "step {}", step);
                }
                (expected, actual) => {
                    prop_assert!(false, "step {step}: model {expected:?}, breaker {actual:?}");
                }
            },
            Op::Settle { index, verdict } => {
                if !held.is_empty() {
                    let (permit, admitted) = held.remove(index % held.len());
                    end(permit, verdict);
                    model.settle(admitted, verdict);
                }
            }
            Op::Advance(by) => {
                clock.advance(by);
                model.now += by;
            }
            Op::RecordSuccess | Op::RecordFailure => {
                let failed = matches!(op, Op::RecordFailure);
                let admitted = model.admitted(false);
                model.settle(
                    admitted,
                    if failed {
                        Verdict::Failure
                    } else {
                        Verdict::Success
                    },
                );
                if failed {
                    breaker.record_failure();
                } else {
                    breaker.record_success();
                }
            }
            Op::Reset => {
                breaker.reset();
                model.transition(State::Closed);
            }
            Op::ForceOpen => {
                breaker.force_open();
                model.transition(State::ForcedOpen);
            }
            Op::Disable => {
                breaker.disable();
                model.transition(State::Disabled);
            }
        }
        prop_assert_eq!(
            breaker.state(),
            model.state,
            "state after step {}: {:?}",
            step,
            op
        );
        prop_assert_eq!(
            breaker.metrics(),
            model.expected_metrics(origin),
            "metrics after step {}: {:?}",
            step,
            op
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("regressions"),
        )),
        ..ProptestConfig::default()
    })]

    #[test]
    fn breaker_agrees_with_the_model(
        options in options(),
        program in proptest::collection::vec(op(), 1..80),
    ) {
        silence_panics();
        run(&options, &program)?;
    }
}

/// The programs panic on purpose; keep the test output readable.
fn silence_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| std::panic::set_hook(Box::new(|_| {})));
}
