//! Breakers as metrics, through the `metrics` crate's facade, so whichever
//! exporter the program installs receives them.
//!
//! The breaker's own striped counters stay the truth: a call touches no
//! metric. [`Registry::publish_metrics`] copies the counters, states and
//! rates into the facade (call it before each scrape, or let a
//! [`MetricsPublisher`] call it on a timer); transitions are counted as
//! they happen, and the call-duration histogram is fed by breakers that
//! time their calls anyway (a slow-call rule), on the timed call's own
//! out-of-line path.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::OnceLock;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use metrics::{
    counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Histogram,
    Unit,
};

use crate::{CircuitBreaker, Event, Registry, State};

/// The metric names, fixed on first use.
struct MetricNames {
    state: &'static str,
    calls: &'static str,
    transitions: &'static str,
    fallback_calls: &'static str,
    retry_calls: &'static str,
    failure_rate: &'static str,
    slow_call_rate: &'static str,
    call_duration: &'static str,
}

static NAMES: OnceLock<MetricNames> = OnceLock::new();

impl MetricNames {
    fn with_prefix(prefix: Option<&str>) -> MetricNames {
        let name = |suffix: &str| -> &'static str {
            match prefix {
                None => Box::leak(format!("circuit_breaker_{suffix}").into_boxed_str()),
                Some(prefix) => {
                    Box::leak(format!("{prefix}_circuit_breaker_{suffix}").into_boxed_str())
                }
            }
        };
        MetricNames {
            state: name("state"),
            calls: name("calls_total"),
            transitions: name("transitions_total"),
            fallback_calls: name("fallback_calls_total"),
            retry_calls: name("retry_calls_total"),
            failure_rate: name("failure_rate"),
            slow_call_rate: name("slow_call_rate"),
            call_duration: name("call_duration_seconds"),
        }
    }
}

fn names() -> &'static MetricNames {
    NAMES.get_or_init(|| MetricNames::with_prefix(None))
}

/// Puts `prefix` and an underscore in front of every metric name
/// (`myapp_circuit_breaker_state`). Once per program, before the names are
/// first used (by a publish, a transition, or a timed call): names never
/// change while an exporter holds them, so set it first thing in `main`.
///
/// # Errors
///
/// [`MetricPrefixError::Invalid`] for a prefix that is not a Prometheus
/// name (ASCII letters, digits and `_`, not starting with a digit);
/// [`MetricPrefixError::AlreadyFixed`] when a prefix was set, or a metric
/// published, before.
///
/// ```
/// use circuit_runtime::{set_metric_prefix, MetricPrefixError};
///
/// assert!(matches!(set_metric_prefix("my-app"), Err(MetricPrefixError::Invalid { .. })));
/// set_metric_prefix("myapp")?;
/// assert!(matches!(set_metric_prefix("other"), Err(MetricPrefixError::AlreadyFixed { .. })));
/// # Ok::<(), MetricPrefixError>(())
/// ```
pub fn set_metric_prefix(prefix: &str) -> Result<(), MetricPrefixError> {
    let valid = prefix
        .chars()
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(MetricPrefixError::Invalid {
            prefix: prefix.to_owned(),
        });
    }
    let mut set = false;
    let fixed = NAMES.get_or_init(|| {
        set = true;
        MetricNames::with_prefix(Some(prefix))
    });
    if set {
        Ok(())
    } else {
        Err(MetricPrefixError::AlreadyFixed {
            state_metric: fixed.state,
        })
    }
}

/// Why [`set_metric_prefix`] refused a prefix.
///
/// ```
/// let err = circuit_runtime::set_metric_prefix("9lives").unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "metric prefix `9lives` is not a Prometheus name: use ASCII letters, digits and `_`, not starting with a digit"
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetricPrefixError {
    /// The prefix has characters a metric name cannot have.
    #[error(
        "metric prefix `{prefix}` is not a Prometheus name: use ASCII letters, digits and `_`, \
         not starting with a digit"
    )]
    Invalid {
        /// The prefix asked for.
        prefix: String,
    },
    /// The names were fixed already.
    #[error(
        "metric names are fixed already (the state gauge is `{state_metric}`): set the prefix \
         once, before the first metric is published"
    )]
    AlreadyFixed {
        /// The name the state gauge has for good.
        state_metric: &'static str,
    },
}

/// The `circuit_breaker_state` gauge's value for `state`.
fn state_value(state: State) -> f64 {
    match state {
        State::Closed => 0.0,
        State::HalfOpen => 1.0,
        State::Open => 2.0,
        State::ForcedOpen => 3.0,
        State::Disabled => 4.0,
    }
}

/// Counts a transition, and moves the state gauge with it, as it happens.
/// The gauge takes the breaker's state as it is now, not the event's: two
/// transitions' events can arrive in either order.
pub(crate) fn record(breaker: &CircuitBreaker, event: &Event) {
    if let Event::Transition(transition) = event {
        let names = names();
        let name = transition.name;
        counter!(
            names.transitions,
            "name" => name,
            "from_state" => transition.from.as_str(),
            "to_state" => transition.to.as_str()
        )
        .increment(1);
        gauge!(names.state, "name" => name).set(state_value(breaker.state()));
    }
}

/// The counters a breaker publishes, in the order of [`Published::counts`].
const PUBLISHED_COUNTERS: usize = 12;

/// What the facade was last told about one breaker.
#[derive(Default)]
pub(crate) struct Published {
    /// The histogram of call durations, registered on the first timed call.
    durations: OnceLock<Histogram>,
    /// The counts last published: the facade gets the increase since, so
    /// a name's counters keep rising when a fresh breaker takes it over.
    counts: [AtomicU64; PUBLISHED_COUNTERS],
    /// Whether the window rates were published once.
    rates: AtomicBool,
    /// Whether the slow-call rate was published once.
    slow_rate: AtomicBool,
}

// A feature must not take an auto trait away from `CircuitBreaker`: users
// call breakers inside `catch_unwind`. The histogram handle is only ever
// recorded into, and the counts only ever raised: a panic inside a
// recorder loses at most one sample or increase.
impl std::panic::RefUnwindSafe for Published {}
impl std::panic::UnwindSafe for Published {}

/// Records a timed call's duration in the breaker's histogram. The handle
/// is registered on the breaker's first timed call, with whichever
/// recorder is installed then: install the exporter before the first
/// call, as the `metrics` crate asks.
pub(crate) fn record_duration(breaker: &CircuitBreaker, duration: Duration) {
    breaker
        .facade
        .durations
        .get_or_init(|| histogram!(names().call_duration, "name" => breaker.static_name()))
        .record(duration.as_secs_f64());
}

/// A retired breaker's rates, if it published any, read "no value": the
/// breaker that takes its name over starts with an empty window.
pub(crate) fn retired(breaker: &CircuitBreaker) {
    let names = names();
    let name = breaker.static_name();
    if breaker.facade.rates.load(Ordering::Relaxed) {
        gauge!(names.failure_rate, "name" => name).set(f64::NAN);
    }
    if breaker.facade.slow_rate.load(Ordering::Relaxed) {
        gauge!(names.slow_call_rate, "name" => name).set(f64::NAN);
    }
}

fn describe(names: &MetricNames) {
    describe_gauge!(
        names.state,
        "Circuit breaker state: 0 closed, 1 half-open, 2 open, 3 forced open, 4 disabled"
    );
    describe_counter!(
        names.calls,
        "Calls through the breaker, by result: success, failure, ignored, rejected (open), bulkhead_rejected (at max_concurrent_calls)"
    );
    describe_counter!(
        names.transitions,
        "State changes, by from_state and to_state"
    );
    describe_counter!(
        names.fallback_calls,
        "Fallbacks run, by reason: rejected or failed"
    );
    describe_counter!(
        names.retry_calls,
        "Calls of #[retry] functions through the breaker, by how they ended"
    );
    describe_gauge!(
        names.failure_rate,
        "Share of failures in the window, 0 to 1, once it holds minimum_calls (NaN while a fresh window holds fewer)"
    );
    describe_gauge!(
        names.slow_call_rate,
        "Share of slow calls in the window, 0 to 1, once it holds minimum_calls (NaN while a fresh window holds fewer)"
    );
    describe_histogram!(
        names.call_duration,
        Unit::Seconds,
        "Duration of calls, for breakers with a slow_call_duration"
    );
}

impl CircuitBreaker {
    /// Copies this breaker's counters, state and window rates into the
    /// `metrics` facade (feature `metrics`); see
    /// [`Registry::publish_metrics`], which does this for every breaker.
    ///
    /// ```
    /// use circuit_runtime::CircuitBreaker;
    /// let breaker = CircuitBreaker::new("standalone", Default::default());
    /// let _ = breaker.call(|| Ok::<_, ()>(()));
    /// breaker.publish_metrics(); // to whichever recorder is installed
    /// ```
    pub fn publish_metrics(&self) {
        describe(names());
        self.publish_to_facade();
    }

    fn publish_to_facade(&self) {
        let names = names();
        let name = self.static_name();
        let metrics = self.metrics();
        gauge!(names.state, "name" => name).set(state_value(self.state()));
        let counts: [(&str, &str, &'static str, u64); PUBLISHED_COUNTERS] = [
            (names.calls, "result", "success", metrics.successful_calls),
            (names.calls, "result", "failure", metrics.failed_calls),
            (names.calls, "result", "ignored", metrics.ignored_calls),
            (names.calls, "result", "rejected", metrics.rejected_calls),
            (
                names.calls,
                "result",
                "bulkhead_rejected",
                metrics.bulkhead_rejected,
            ),
            (
                names.fallback_calls,
                "reason",
                "rejected",
                metrics.fallbacks_after_rejection,
            ),
            (
                names.fallback_calls,
                "reason",
                "failed",
                metrics.fallbacks_after_failure,
            ),
            (
                names.retry_calls,
                "result",
                "successful_without_retry",
                metrics.retry_calls.successful_without_retry,
            ),
            (
                names.retry_calls,
                "result",
                "successful_with_retry",
                metrics.retry_calls.successful_with_retry,
            ),
            (
                names.retry_calls,
                "result",
                "failed_without_retry",
                metrics.retry_calls.failed_without_retry,
            ),
            (
                names.retry_calls,
                "result",
                "failed_with_retry",
                metrics.retry_calls.failed_with_retry,
            ),
            (
                names.retry_calls,
                "result",
                "budget_exhausted",
                metrics.retry_calls.budget_exhausted,
            ),
        ];
        for ((metric, label, value, count), published) in
            counts.into_iter().zip(&self.facade.counts)
        {
            let before = published.fetch_max(count, Ordering::Relaxed);
            counter!(metric, "name" => name, label => value)
                .increment(count.saturating_sub(before));
        }
        // Not published before the window first holds `minimum_calls`;
        // after that, NaN while it holds fewer: a series cannot be
        // withdrawn through the facade, and NaN is Prometheus's "no value"
        // (a gap in a graph, false in every comparison) where a stale rate
        // would lie. Open, the window still holds the outcomes that
        // tripped it, and reports their rates.
        let judged = self.judged_rates();
        if judged.is_some() {
            self.facade.rates.store(true, Ordering::Relaxed);
        } else if !self.facade.rates.load(Ordering::Relaxed) {
            return;
        }
        let (failure_rate, slow_call_rate) = judged.unwrap_or((f64::NAN, f64::NAN));
        gauge!(names.failure_rate, "name" => name).set(failure_rate);
        // Only a breaker that times its calls knows which are slow; one
        // that stopped timing them has no rate any more.
        if self.config().slow_call_duration().is_some() {
            self.facade.slow_rate.store(true, Ordering::Relaxed);
            gauge!(names.slow_call_rate, "name" => name).set(slow_call_rate);
        } else if self.facade.slow_rate.load(Ordering::Relaxed) {
            gauge!(names.slow_call_rate, "name" => name).set(f64::NAN);
        }
    }
}

impl Registry {
    /// Copies every breaker's counters, state and window rates into the
    /// `metrics` facade (feature `metrics`), for whichever recorder the
    /// program installed. Call it before rendering a scrape, or start a
    /// [`MetricsPublisher`] that calls it on a timer.
    ///
    /// | metric | type | labels |
    /// |---|---|---|
    /// | `circuit_breaker_state` | gauge: 0 closed, 1 half-open, 2 open, 3 forced open, 4 disabled | `name` |
    /// | `circuit_breaker_calls_total` | counter | `name`, `result`: `success`, `failure`, `ignored`, `rejected` |
    /// | `circuit_breaker_transitions_total` | counter, counted as transitions happen | `name`, `from_state`, `to_state` |
    /// | `circuit_breaker_fallback_calls_total` | counter | `name`, `reason`: `rejected`, `failed` |
    /// | `circuit_breaker_retry_calls_total` | counter | `name`, `result`: `successful_without_retry`, `successful_with_retry`, `failed_without_retry`, `failed_with_retry`, `budget_exhausted` |
    /// | `circuit_breaker_failure_rate` | gauge, 0 to 1, once the window holds `minimum_calls` | `name` |
    /// | `circuit_breaker_slow_call_rate` | gauge, 0 to 1, likewise | `name` |
    /// | `circuit_breaker_call_duration_seconds` | histogram, breakers with a `slow_call_duration` only | `name` |
    ///
    /// ```
    /// use circuit_runtime::{registry, Config};
    ///
    /// let breaker = registry().get_or_create("inventory", Config::default());
    /// let _ = breaker.call(|| Ok::<_, ()>(()));
    /// // In a `/metrics` handler, before the exporter renders:
    /// registry().publish_metrics();
    /// ```
    pub fn publish_metrics(&self) {
        describe(names());
        for breaker in self.all() {
            breaker.publish_to_facade();
        }
    }
}

/// A thread that calls [`Registry::publish_metrics`] on a timer, for
/// exporters that answer scrapes on their own (an HTTP listener, a push
/// gateway). Publishes once at start, then every interval, and stops when
/// dropped.
///
/// ```
/// use std::time::Duration;
/// use circuit_runtime::{registry, MetricsPublisher};
///
/// let publisher = MetricsPublisher::start(registry(), Duration::from_secs(5))?;
/// // ... the program runs ...
/// drop(publisher); // publishes no more, and joins the thread
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct MetricsPublisher {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsPublisher {
    /// Starts publishing `registry`'s metrics every `interval`, on a thread
    /// named `circuit-metrics`.
    ///
    /// # Errors
    ///
    /// The error of spawning the thread.
    ///
    /// ```
    /// use std::time::Duration;
    /// let publisher = circuit_runtime::MetricsPublisher::start(
    ///     circuit_runtime::registry(),
    ///     Duration::from_secs(15),
    /// )?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn start(registry: &'static Registry, interval: Duration) -> io::Result<MetricsPublisher> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = thread::Builder::new()
            .name("circuit-metrics".to_owned())
            .spawn(move || loop {
                registry.publish_metrics();
                match stopped.recv_timeout(interval) {
                    Err(RecvTimeoutError::Timeout) => {}
                    Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
                }
            })?;
        Ok(MetricsPublisher {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for MetricsPublisher {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
