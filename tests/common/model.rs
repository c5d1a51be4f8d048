//! `Model`: a deliberately plain single-threaded restatement of the rules in
//! the README, to hold the real breaker against.
//!
//! The model is written from the rules, not from the implementation: where
//! the two disagree, one of them misreads the rules. Time is kept the way
//! the rules state it: nanoseconds since the breaker was created plus one,
//! saturating at `u64::MAX`, so a clock moved to the end of time gives the
//! same answers in both.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use circuit_runtime::{Config, ManualClock, Metrics, State};

/// The options the model understands (jitter stays 0 so open times are
/// predictable; a separate test bounds jittered times).
#[derive(Clone, Debug)]
pub struct Options {
    pub failure_threshold: u32,
    pub success_threshold: u32,
    pub half_open_max_calls: u32,
    pub recovery_timeout: Duration,
    pub failure_rate_threshold: Option<f64>,
    pub window: Window,
    pub minimum_calls: u32,
    pub slow_call_duration: Option<Duration>,
    pub slow_call_rate_threshold: Option<f64>,
    pub recovery_backoff: f64,
    pub max_recovery_timeout: Duration,
    pub half_open_timeout: Duration,
}

#[derive(Clone, Copy, Debug)]
pub enum Window {
    Calls(u32),
    Span(Duration),
}

impl Options {
    pub fn config(&self, clock: &ManualClock) -> Config {
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

/// How a permit ended, as the breaker counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Success,
    Failure,
    Ignored,
    /// Dropped without a verdict: records nothing, frees a trial slot.
    Cancelled,
}

/// How the model admitted a call.
#[derive(Clone, Copy, Debug)]
pub struct Admitted {
    pub generation: u64,
    pub state: State,
    pub trial: bool,
    /// Timeline nanoseconds.
    pub started: u64,
}

/// How the model rejected a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub state: State,
    pub retry_after: Option<Duration>,
}

/// How many times one call may look at the state before it answers from
/// the state as it is.
const LOOKS: u32 = 4;

/// The time window moves in tenths of its span and covers the ten most
/// recent tenths.
const BUCKETS: u64 = 10;

/// The rules, restated as plainly as possible.
#[derive(Debug)]
pub struct Model {
    options: Options,
    /// How far the clock has moved since the breaker was created, in
    /// nanoseconds; the clock saturates, and so does this.
    elapsed: u64,
    pub state: State,
    /// Every transition starts a new period; an outcome only counts in the
    /// period it was admitted in.
    generation: u64,
    /// Timeline nanoseconds.
    entered_at: Option<u64>,
    open_until: u64,
    open_for: Duration,
    consecutive_failures: u32,
    trials_in_flight: u32,
    trial_successes: u32,
    /// (bucket stamp, failed, slow) of the outcomes of the current closed
    /// period; stamps are 0 for a count window.
    window: VecDeque<(u64, bool, bool)>,
    metrics: Metrics,
    /// Timeline nanoseconds.
    last_failure_at: Option<u64>,
}

/// `duration` in nanoseconds, saturating at `u64::MAX`.
pub fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// `duration` times `factor`, saturating at `Duration::MAX`.
fn scale(duration: Duration, factor: f64) -> Duration {
    Duration::try_from_secs_f64(duration.as_secs_f64() * factor).unwrap_or(Duration::MAX)
}

impl Model {
    pub fn new(options: Options) -> Self {
        Model {
            open_for: options.recovery_timeout,
            options,
            elapsed: 0,
            state: State::Closed,
            generation: 0,
            entered_at: None,
            open_until: 0,
            consecutive_failures: 0,
            trials_in_flight: 0,
            trial_successes: 0,
            window: VecDeque::new(),
            metrics: Metrics::default(),
            last_failure_at: None,
        }
    }

    /// A breaker just reset, `elapsed` after its creation, that has counted
    /// `before` so far (on a clock that started at `origin`): everything a
    /// reset clears is as new, the monotonic counters carry on.
    pub fn after_reset(options: Options, elapsed: u64, before: &Metrics, origin: Instant) -> Self {
        let mut model = Model::new(options);
        model.elapsed = elapsed;
        model.entered_at = Some(model.now());
        model.last_failure_at = before
            .last_failure_at
            .map(|at| nanos(at.duration_since(origin)).saturating_add(1));
        // Only the monotonic counters: `expected_metrics` derives the rest.
        model.metrics = before.clone();
        model
    }

    /// The breaker's time: nanoseconds since its creation plus one.
    fn now(&self) -> u64 {
        self.elapsed.saturating_add(1)
    }

    pub fn advance(&mut self, by: Duration) {
        self.elapsed = self.elapsed.saturating_add(nanos(by));
    }

    fn keeps_window(&self) -> bool {
        self.options.failure_rate_threshold.is_some()
            || self.options.slow_call_rate_threshold.is_some()
    }

    /// The stamp of the window bucket `at` falls in (0 for a count window).
    fn stamp(&self, at: u64) -> u64 {
        match self.options.window {
            Window::Span(span) => {
                let width = (nanos(span) / BUCKETS).max(1);
                (at / width).saturating_add(1)
            }
            Window::Calls(_) => 0,
        }
    }

    fn in_window(&self, stamp: u64) -> bool {
        match self.options.window {
            Window::Calls(_) => true,
            Window::Span(_) => stamp >= self.stamp(self.now()).saturating_sub(BUCKETS - 1),
        }
    }

    /// The outcomes the window holds now: (calls, failures, slow).
    fn tally(&self) -> (u64, u64, u64) {
        self.window
            .iter()
            .filter(|(stamp, _, _)| self.in_window(*stamp))
            .fold(
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

    pub fn transition(&mut self, to: State) {
        let from = self.state;
        let now = self.now();
        match to {
            State::Open => {
                if from == State::HalfOpen {
                    self.open_for = scale(self.open_for, self.options.recovery_backoff)
                        .min(self.options.max_recovery_timeout);
                }
                self.open_until = now.saturating_add(nanos(self.open_for));
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
        self.entered_at = Some(now);
        self.consecutive_failures = 0;
        self.trials_in_flight = 0;
        self.trial_successes = 0;
    }

    /// The state a call arriving now would meet: `state()`'s rule.
    pub fn observed_state(&self) -> State {
        match self.state {
            State::Open if self.time_left_open().is_none() => State::HalfOpen,
            state => state,
        }
    }

    fn time_left_open(&self) -> Option<Duration> {
        let now = self.now();
        (now < self.open_until).then(|| Duration::from_nanos(self.open_until - now))
    }

    fn half_open_expired(&self) -> bool {
        let entered_at = self.entered_at.unwrap_or_default();
        Duration::from_nanos(self.now().saturating_sub(entered_at))
            >= self.options.half_open_timeout
    }

    /// One call asks to be admitted.
    ///
    /// A call moves the breaker from open to half-open at most once and
    /// back to open for a half-open timeout at most once, and does not judge
    /// the timeout of a half-open period it began itself. Alone on the
    /// breaker it never needs more than three looks, nor meets its own
    /// recovery elapsed again: those branches are written down for
    /// completeness, and the concurrent test is what reaches them.
    pub fn acquire(&mut self) -> Result<Admitted, Rejection> {
        let mut recovered = false;
        let mut timed_out = false;
        for _ in 1..LOOKS {
            match self.state {
                State::Closed | State::Disabled => return Ok(self.admitted(false)),
                State::ForcedOpen => return Err(self.reject(None)),
                State::Open => match self.time_left_open() {
                    Some(left) => return Err(self.reject(Some(left))),
                    None if recovered => return Err(self.reject(Some(Duration::ZERO))),
                    None => {
                        recovered = true;
                        self.transition(State::HalfOpen);
                    }
                },
                State::HalfOpen => {
                    if !recovered && !timed_out && self.half_open_expired() {
                        timed_out = true;
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
        match self.state {
            State::Closed | State::Disabled => Ok(self.admitted(false)),
            State::Open => {
                let left = self.time_left_open().unwrap_or_default();
                Err(self.reject(Some(left)))
            }
            State::HalfOpen | State::ForcedOpen => Err(self.reject(None)),
        }
    }

    /// A call admitted now, e.g. the one `record_success` stands for.
    pub fn admitted(&self, trial: bool) -> Admitted {
        Admitted {
            generation: self.generation,
            state: self.state,
            trial,
            started: self.now(),
        }
    }

    fn reject(&mut self, retry_after: Option<Duration>) -> Rejection {
        self.metrics.rejected_calls += 1;
        Rejection {
            state: self.state,
            retry_after,
        }
    }

    pub fn settle(&mut self, admitted: Admitted, verdict: Verdict) {
        let now = self.now();
        let slow = verdict != Verdict::Cancelled
            && self.options.slow_call_duration.is_some_and(|slow| {
                Duration::from_nanos(now.saturating_sub(admitted.started)) >= slow
            });
        let failed = verdict == Verdict::Failure;
        match verdict {
            Verdict::Success => self.metrics.successful_calls += 1,
            Verdict::Failure => self.metrics.failed_calls += 1,
            Verdict::Ignored => self.metrics.ignored_calls += 1,
            Verdict::Cancelled => {}
        }
        if verdict != Verdict::Cancelled {
            self.metrics.total_calls += 1;
        }
        self.metrics.slow_calls += u64::from(slow);
        if failed {
            self.last_failure_at = Some(now);
        }
        if admitted.generation != self.generation {
            return; // an outcome of an earlier period changes nothing now
        }
        match (admitted.state, verdict) {
            (State::Closed, Verdict::Success | Verdict::Failure) => {
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
        let stamp = self.stamp(self.now());
        self.window.push_back((stamp, failed, slow));
        if let Window::Calls(size) = self.options.window {
            while self.window.len() > usize::try_from(size).unwrap_or(usize::MAX) {
                self.window.pop_front();
            }
        }
        let (calls, failures, slow_calls) = self.tally();
        if calls < u64::from(self.options.minimum_calls) {
            return;
        }
        #[allow(clippy::cast_precision_loss)] // counts far below 2^52
        let reached = |part: u64, threshold: Option<f64>| {
            threshold.is_some_and(|threshold| part as f64 / calls as f64 >= threshold)
        };
        if reached(failures, self.options.failure_rate_threshold)
            || reached(slow_calls, self.options.slow_call_rate_threshold)
        {
            self.transition(State::Open);
        }
    }

    /// What `CircuitBreaker::metrics` should say now, for a breaker created
    /// when its clock read `origin`.
    pub fn expected_metrics(&self, origin: Instant) -> Metrics {
        let mut expected = self.metrics.clone();
        expected.consecutive_failures = if self.state == State::Closed {
            self.consecutive_failures
        } else {
            0
        };
        expected.trial_successes = if self.state == State::HalfOpen {
            self.trial_successes
        } else {
            0
        };
        let (calls, failures, slow) = self.tally();
        #[allow(clippy::cast_precision_loss)] // counts far below 2^52
        let rate =
            |part: u64| (self.keeps_window() && calls > 0).then(|| part as f64 / calls as f64);
        expected.failure_rate = rate(failures);
        expected.slow_call_rate = rate(slow);
        let at = |nanos: u64| origin + Duration::from_nanos(nanos - 1);
        expected.last_failure_at = self.last_failure_at.map(at);
        expected.last_transition_at = self.entered_at.map(at);
        expected
    }
}
