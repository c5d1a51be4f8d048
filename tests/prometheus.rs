//! The `metrics` feature, rendered by the Prometheus exporter a service
//! installs: every metric's name, labels and values as a scrape sees them.
//! Each test records into an exporter of its own (a thread-local recorder).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use circuit_runtime::retry::RetryBudget;
use circuit_runtime::{
    circuit_breaker, registry, retry, CallError, CircuitBreaker, CircuitOpenError, Config,
    FallbackReason, ManualClock, Registry, State,
};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

/// A Prometheus exporter of the test's own.
fn exporter() -> (PrometheusRecorder, PrometheusHandle) {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    (recorder, handle)
}

/// The sample lines of `metric` (any suffix) in a scrape, sorted.
fn samples(scrape: &str, metric: &str) -> Vec<String> {
    let mut lines: Vec<String> = scrape
        .lines()
        .filter(|line| line.starts_with(metric) && !line.starts_with('#'))
        .map(str::to_owned)
        .collect();
    lines.sort();
    lines
}

fn rated(clock: &ManualClock) -> Config {
    Config::builder()
        .failure_rate_threshold(0.5)
        .window_size(4)
        .minimum_calls(4)
        .recovery_timeout(Duration::from_secs(30))
        .slow_call_duration(Duration::from_secs(1))
        .clock(clock.clone())
        .build()
        .unwrap()
}

/// A call through `breaker` that takes `millis` on `clock`, then succeeds
/// or fails.
fn call_taking(breaker: &CircuitBreaker, clock: &ManualClock, millis: u64, ok: bool) {
    let _ = breaker.call(|| {
        clock.advance(Duration::from_millis(millis));
        ok.then_some(()).ok_or(())
    });
}

/// A "not found" that takes `millis`: the classifier says it is no
/// failure, so a closed breaker counts it as ignored (timed, but outside
/// the window).
fn ignored_taking(breaker: &CircuitBreaker, clock: &ManualClock, millis: u64) {
    let result = breaker.call_with(
        |_: &u16| false,
        || {
            clock.advance(Duration::from_millis(millis));
            Err::<(), u16>(404)
        },
    );
    assert!(matches!(result, Err(CallError::Failed(404))));
}

/// A failing call that takes `millis` (when it runs), whose fallback
/// serves the caller instead: returns why the fallback ran.
fn falling_back_taking(
    breaker: &CircuitBreaker,
    clock: &ManualClock,
    millis: u64,
) -> FallbackReason {
    let served = breaker.call_or_else(
        || {
            clock.advance(Duration::from_millis(millis));
            Err(())
        },
        |cause| Ok::<_, ()>(cause.reason()),
    );
    served.expect("the fallback serves every call")
}

#[test]
fn a_scrape_shows_state_calls_transitions_fallbacks_rates_and_durations() {
    let (recorder, handle) = exporter();
    let registry = Registry::new();
    let clock = ManualClock::new();
    metrics::with_local_recorder(&recorder, || {
        let checkout = registry.get_or_create("checkout", rated(&clock));
        let fall_back = |millis| falling_back_taking(&checkout, &clock, millis);
        call_taking(&checkout, &clock, 100, true);
        call_taking(&checkout, &clock, 1500, true);
        for _ in 0..3 {
            ignored_taking(&checkout, &clock, 50);
        }
        assert_eq!(fall_back(200), FallbackReason::Failed);
        registry.publish_metrics();
        let scrape = handle.render();
        assert_eq!(
            samples(&scrape, "circuit_breaker_failure_rate"),
            Vec::<String>::new(),
            "no rate while the window holds fewer than minimum_calls:\n{scrape}"
        );

        // The fourth outcome in the window, the second failure: it opens.
        assert_eq!(fall_back(300), FallbackReason::Failed);
        assert_eq!(checkout.state(), State::Open);
        assert_eq!(fall_back(0), FallbackReason::Rejected);
        // Open, a classifier changes nothing: the call is rejected unrun.
        let rejected = checkout.call_with(|(): &()| false, || Err::<(), ()>(()));
        assert!(matches!(rejected, Err(CallError::Rejected(_))));
        registry.publish_metrics();
    });
    let scrape = handle.render();
    assert_eq!(
        samples(&scrape, "circuit_breaker_state"),
        [r#"circuit_breaker_state{name="checkout"} 2"#]
    );
    assert_eq!(
        samples(&scrape, "circuit_breaker_calls_total"),
        [
            r#"circuit_breaker_calls_total{name="checkout",result="bulkhead_rejected"} 0"#,
            r#"circuit_breaker_calls_total{name="checkout",result="failure"} 2"#,
            r#"circuit_breaker_calls_total{name="checkout",result="ignored"} 3"#,
            r#"circuit_breaker_calls_total{name="checkout",result="rejected"} 2"#,
            r#"circuit_breaker_calls_total{name="checkout",result="success"} 2"#,
        ]
    );
    assert_eq!(
        samples(&scrape, "circuit_breaker_transitions_total"),
        [
            r#"circuit_breaker_transitions_total{name="checkout",from_state="closed",to_state="open"} 1"#
        ]
    );
    assert_eq!(
        samples(&scrape, "circuit_breaker_fallback_calls_total"),
        [
            r#"circuit_breaker_fallback_calls_total{name="checkout",reason="failed"} 2"#,
            r#"circuit_breaker_fallback_calls_total{name="checkout",reason="rejected"} 1"#,
        ]
    );
    // Open, the window still holds the outcomes that tripped it; the
    // ignored calls never entered it.
    assert_eq!(
        samples(&scrape, "circuit_breaker_failure_rate"),
        [r#"circuit_breaker_failure_rate{name="checkout"} 0.5"#]
    );
    assert_eq!(
        samples(&scrape, "circuit_breaker_slow_call_rate"),
        [r#"circuit_breaker_slow_call_rate{name="checkout"} 0.25"#]
    );
    assert!(
        samples(&scrape, "circuit_breaker_call_duration_seconds_count")
            == [r#"circuit_breaker_call_duration_seconds_count{name="checkout"} 7"#],
        "one duration per call that ran to a verdict, ignored ones included:\n{scrape}"
    );
    assert!(
        samples(&scrape, "circuit_breaker_call_duration_seconds_sum")
            == [r#"circuit_breaker_call_duration_seconds_sum{name="checkout"} 2.25"#],
        "{scrape}"
    );
    assert!(scrape.contains("# HELP circuit_breaker_state Circuit breaker state: 0 closed"));

    // Recovered: a fresh window, below `minimum_calls` again. The rates
    // read "no value" rather than the 0.5 of the window that tripped it.
    metrics::with_local_recorder(&recorder, || {
        clock.advance(Duration::from_secs(30));
        let checkout = registry.get("checkout").unwrap();
        checkout.call(|| Ok::<_, ()>(())).unwrap();
        registry.publish_metrics();
    });
    let scrape = handle.render();
    assert_eq!(
        samples(&scrape, "circuit_breaker_state"),
        [r#"circuit_breaker_state{name="checkout"} 0"#]
    );
    assert_eq!(
        samples(&scrape, "circuit_breaker_failure_rate"),
        [r#"circuit_breaker_failure_rate{name="checkout"} NaN"#]
    );
    assert_eq!(
        samples(&scrape, "circuit_breaker_slow_call_rate"),
        [r#"circuit_breaker_slow_call_rate{name="checkout"} NaN"#]
    );
    assert_eq!(
        samples(&scrape, "circuit_breaker_transitions_total").len(),
        3
    );
}

#[test]
fn rates_are_published_once_the_window_holds_minimum_calls() {
    let (recorder, handle) = exporter();
    let registry = Registry::new();
    let clock = ManualClock::new();
    metrics::with_local_recorder(&recorder, || {
        let search = registry.get_or_create("search", rated(&clock));
        for ok in [true, true, false, true] {
            let _ = search.call(|| if ok { Ok::<_, ()>(()) } else { Err(()) });
        }
        registry.publish_metrics();
    });
    let scrape = handle.render();
    assert_eq!(
        samples(&scrape, "circuit_breaker_failure_rate"),
        [r#"circuit_breaker_failure_rate{name="search"} 0.25"#]
    );
    assert_eq!(
        samples(&scrape, "circuit_breaker_slow_call_rate"),
        [r#"circuit_breaker_slow_call_rate{name="search"} 0"#]
    );
}

#[test]
fn a_breaker_without_rules_that_need_them_has_no_rates_and_no_durations() {
    let (recorder, handle) = exporter();
    let registry = Registry::new();
    metrics::with_local_recorder(&recorder, || {
        let mail = registry.get_or_create("mail", Config::default());
        for _ in 0..10 {
            mail.call(|| Ok::<_, ()>(())).unwrap();
        }
        mail.force_open();
        mail.reset();
        mail.disable();
        registry.publish_metrics();
    });
    let scrape = handle.render();
    assert_eq!(
        samples(&scrape, "circuit_breaker_state"),
        [r#"circuit_breaker_state{name="mail"} 4"#],
        "disabled"
    );
    assert_eq!(
        samples(&scrape, "circuit_breaker_transitions_total"),
        [
            r#"circuit_breaker_transitions_total{name="mail",from_state="closed",to_state="disabled"} 1"#,
            r#"circuit_breaker_transitions_total{name="mail",from_state="closed",to_state="forced_open"} 1"#,
            r#"circuit_breaker_transitions_total{name="mail",from_state="forced_open",to_state="closed"} 1"#,
        ]
    );
    for absent in [
        "circuit_breaker_failure_rate",
        "circuit_breaker_slow_call_rate",
        "circuit_breaker_call_duration_seconds",
    ] {
        assert!(
            samples(&scrape, absent).is_empty(),
            "{absent} in:\n{scrape}"
        );
    }
}

#[test]
fn an_open_breaker_whose_time_has_passed_reads_half_open() {
    let (recorder, handle) = exporter();
    let clock = ManualClock::new();
    let config = Config::builder()
        .failure_threshold(1)
        .recovery_timeout(Duration::from_secs(5))
        .clock(clock.clone())
        .build()
        .unwrap();
    let breaker = CircuitBreaker::new("idle", config);
    metrics::with_local_recorder(&recorder, || {
        breaker.record_failure();
        clock.advance(Duration::from_secs(5));
        breaker.publish_metrics();
    });
    assert_eq!(
        samples(&handle.render(), "circuit_breaker_state"),
        [r#"circuit_breaker_state{name="idle"} 1"#],
        "awaiting a trial, as health reports it"
    );
}

#[test]
fn a_name_taken_over_by_a_fresh_breaker_keeps_counting_up_and_drops_the_old_rates() {
    let (recorder, handle) = exporter();
    let registry = Registry::new();
    let clock = ManualClock::new();
    metrics::with_local_recorder(&recorder, || {
        let old = registry.get_or_create("orders", rated(&clock));
        for _ in 0..5 {
            old.call(|| Ok::<_, ()>(())).unwrap();
        }
        registry.publish_metrics();
        let fresh = registry.replace("orders", rated(&clock));
        for _ in 0..2 {
            fresh.call(|| Ok::<_, ()>(())).unwrap();
        }
        registry.publish_metrics();
    });
    let scrape = handle.render();
    assert_eq!(
        samples(
            &scrape,
            r#"circuit_breaker_calls_total{name="orders",result="success"}"#
        ),
        [r#"circuit_breaker_calls_total{name="orders",result="success"} 7"#],
        "a counter never goes down, and counts the fresh breaker's calls too"
    );
    assert_eq!(
        samples(&scrape, "circuit_breaker_failure_rate"),
        [r#"circuit_breaker_failure_rate{name="orders"} NaN"#],
        "the old window's rate is gone with it"
    );
}

#[test]
fn calls_beyond_the_concurrency_limit_are_their_own_result() {
    let (recorder, handle) = exporter();
    let registry = Registry::new();
    metrics::with_local_recorder(&recorder, || {
        let config = Config::builder().max_concurrent_calls(1).build().unwrap();
        let pool = registry.get_or_create("pool", config);
        let running = pool.try_acquire().unwrap();
        for _ in 0..3 {
            let _ = pool.call(|| Ok::<_, ()>(()));
        }
        running.record_success();
        registry.publish_metrics();
    });
    let scrape = handle.render();
    assert_eq!(
        samples(&scrape, "circuit_breaker_calls_total"),
        [
            r#"circuit_breaker_calls_total{name="pool",result="bulkhead_rejected"} 3"#,
            r#"circuit_breaker_calls_total{name="pool",result="failure"} 0"#,
            r#"circuit_breaker_calls_total{name="pool",result="ignored"} 0"#,
            r#"circuit_breaker_calls_total{name="pool",result="rejected"} 0"#,
            r#"circuit_breaker_calls_total{name="pool",result="success"} 1"#,
        ]
    );
}

/// The error of attempt number `.0` of one call.
#[derive(Debug, PartialEq)]
struct FailedAttempt(u32);

impl From<CircuitOpenError> for FailedAttempt {
    fn from(_: CircuitOpenError) -> Self {
        FailedAttempt(0)
    }
}

/// Fails the first `failures` attempts of a call, then answers with the
/// attempt's number.
#[retry(max_retries = 3, base_delay = "0s", budget = "prometheus.retried")]
#[circuit_breaker(name = "prometheus.retried", failure_threshold = 100)]
fn charge(failures: u32, attempts: &AtomicU32) -> Result<u32, FailedAttempt> {
    let attempt = attempts.fetch_add(1, Ordering::Relaxed) + 1;
    if attempt <= failures {
        Err(FailedAttempt(attempt))
    } else {
        Ok(attempt)
    }
}

#[test]
fn a_scrape_counts_retried_calls_by_how_they_ended_a_spent_budget_included() {
    // Ten retries, while the budget's clock stands still.
    let budget = RetryBudget::builder()
        .retry_ratio(0.0)
        .min_retries_per_second(1)
        .clock(ManualClock::new())
        .build()
        .unwrap();
    RetryBudget::set_named("prometheus.retried", Arc::new(budget));
    let charge = |failures| charge(failures, &AtomicU32::new(0));

    let (recorder, handle) = exporter();
    metrics::with_local_recorder(&recorder, || {
        assert_eq!(charge(0), Ok(1), "at once");
        assert_eq!(charge(2), Ok(3), "two retries");
        assert_eq!(charge(u32::MAX), Err(FailedAttempt(4)), "three retries");
        assert_eq!(charge(u32::MAX), Err(FailedAttempt(4)), "three retries");
        assert_eq!(
            charge(u32::MAX),
            Err(FailedAttempt(3)),
            "the ninth and tenth retries, then the budget is spent"
        );
        assert_eq!(charge(u32::MAX), Err(FailedAttempt(1)), "no retry left");
        registry()
            .get("prometheus.retried")
            .unwrap()
            .publish_metrics();
    });
    let metrics = registry().get("prometheus.retried").unwrap().metrics();
    assert_eq!(
        (
            metrics.successful_calls,
            metrics.failed_calls,
            metrics.retry_attempts
        ),
        (2, 2 + 4 + 4 + 3 + 1, 10)
    );
    assert_eq!(metrics.retry_calls.budget_exhausted, 2);
    let scrape = handle.render();
    assert_eq!(
        samples(&scrape, "circuit_breaker_retry_calls_total"),
        [
            r#"circuit_breaker_retry_calls_total{name="prometheus.retried",result="budget_exhausted"} 2"#,
            r#"circuit_breaker_retry_calls_total{name="prometheus.retried",result="failed_with_retry"} 2"#,
            r#"circuit_breaker_retry_calls_total{name="prometheus.retried",result="failed_without_retry"} 0"#,
            r#"circuit_breaker_retry_calls_total{name="prometheus.retried",result="successful_with_retry"} 1"#,
            r#"circuit_breaker_retry_calls_total{name="prometheus.retried",result="successful_without_retry"} 1"#,
        ],
        "{scrape}"
    );
    assert!(
        samples(&scrape, "circuit_breaker_calls_total").contains(
            &r#"circuit_breaker_calls_total{name="prometheus.retried",result="failure"} 14"#
                .to_owned()
        ),
        "every attempt recorded by the breaker:\n{scrape}"
    );
}
