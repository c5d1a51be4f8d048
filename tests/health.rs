//! `Registry::health()`: the body of a `/health/circuits` endpoint, read
//! through the public API, and the states it reports: those a call would
//! meet now.

use std::time::Duration;

use circuit_runtime::{Config, ManualClock, Registry, State};
use serde_json::json;

fn tripping(clock: &ManualClock) -> Config {
    Config::builder()
        .failure_threshold(1)
        .success_threshold(2)
        .half_open_max_calls(2)
        .recovery_timeout(Duration::from_secs(30))
        .clock(clock.clone())
        .build()
        .unwrap()
}

#[test]
fn an_open_breaker_makes_the_program_unhealthy_until_its_open_time_passes() {
    let clock = ManualClock::new();
    let registry = Registry::new();
    let payments = registry.get_or_create("payments", tripping(&clock));
    registry.get_or_create("mail", tripping(&clock));
    assert!(registry.health().healthy);

    payments.record_failure();
    let health = registry.health();
    assert!(!health.healthy);
    assert_eq!(health.open_circuits, ["payments"]);
    let snapshot = &health.circuits[1];
    assert_eq!(
        (snapshot.name.as_str(), snapshot.state),
        ("payments", State::Open)
    );
    assert_eq!(snapshot.retry_after, Some(Duration::from_secs(30)));
    assert_eq!(health.circuits[0].retry_after, None, "closed: no wait");

    clock.advance(Duration::from_secs(30));
    let health = registry.health();
    assert!(
        health.healthy,
        "an idle breaker is not reported down for ever"
    );
    assert_eq!(
        health.circuits[1].state,
        State::HalfOpen,
        "awaiting its trial"
    );
    assert_eq!(health.circuits[1].retry_after, None);
    assert_eq!(
        payments.metrics().times_half_opened,
        0,
        "reading health moved nothing"
    );
}

#[test]
fn a_forced_open_breaker_is_unhealthy_whatever_the_time() {
    let clock = ManualClock::new();
    let registry = Registry::new();
    registry.get_or_create("db", tripping(&clock)).force_open();
    clock.advance(Duration::from_secs(3600));
    let health = registry.health();
    assert!(!health.healthy);
    assert_eq!(health.open_circuits, ["db"]);
}

#[test]
fn a_snapshot_counts_the_trial_successes_of_the_half_open_period() {
    let clock = ManualClock::new();
    let registry = Registry::new();
    let breaker = registry.get_or_create("db", tripping(&clock));
    breaker.record_failure();
    clock.advance(Duration::from_secs(30));
    breaker.try_acquire().unwrap().record_success();
    let snapshot = &registry.health().circuits[0];
    assert_eq!(snapshot.state, State::HalfOpen);
    assert_eq!(snapshot.metrics.trial_successes, 1);
    breaker.try_acquire().unwrap().record_success();
    let snapshot = &registry.health().circuits[0];
    assert_eq!(snapshot.state, State::Closed);
    assert_eq!(snapshot.metrics.trial_successes, 0, "a new period");
}

#[test]
fn health_serializes_as_the_endpoint_body() {
    let clock = ManualClock::new();
    let registry = Registry::new();
    registry
        .get_or_create("payments", tripping(&clock))
        .record_failure();
    clock.advance(Duration::from_millis(500));
    let body = serde_json::to_value(registry.health()).unwrap();
    assert_eq!(body["healthy"], json!(false));
    assert_eq!(body["open_circuits"], json!(["payments"]));
    let circuit = &body["circuits"][0];
    assert_eq!(circuit["name"], json!("payments"));
    assert_eq!(circuit["state"], json!("open"));
    assert_eq!(circuit["retry_after"], json!("29s500ms"));
    assert_eq!(circuit["metrics"]["failed_calls"], json!(1));
    assert_eq!(circuit["metrics"]["trial_successes"], json!(0));
    assert_eq!(circuit["config"]["failure_threshold"], json!(1));
}

#[test]
fn a_breaker_deciding_alone_is_listed_and_the_program_stays_healthy() {
    let registry = circuit_runtime::Registry::new();
    registry.get_or_create("shared", circuit_runtime::Config::default());
    registry
        .get_or_create("alone", circuit_runtime::Config::default())
        .set_degraded(true, Some("Redis: connection refused"));
    let health = registry.health();
    assert!(health.healthy);
    assert_eq!(health.degraded_circuits, ["alone"]);
    let alone = health.circuits.iter().find(|c| c.name == "alone").unwrap();
    assert!(alone.degraded);
}
