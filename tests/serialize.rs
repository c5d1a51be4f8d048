//! What the `serde` feature writes: the shapes a health endpoint or a log
//! line gets, read back as JSON through the public API.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use circuit_runtime::{Config, ManualClock, Registry, State, Transition, TransitionCause};
use serde_json::{json, Value};

/// An RFC 3339 UTC time to the millisecond: `2026-11-27T02:41:18.123Z`.
fn is_rfc3339(text: &str) -> bool {
    let bytes = text.as_bytes();
    text.len() == 24
        && text.ends_with('Z')
        && [4, 7].iter().all(|&i| bytes[i] == b'-')
        && bytes[10] == b'T'
        && [13, 16].iter().all(|&i| bytes[i] == b':')
        && bytes[19] == b'.'
        && text
            .chars()
            .enumerate()
            .all(|(i, c)| [4, 7, 10, 13, 16, 19, 23].contains(&i) || c.is_ascii_digit())
}

#[test]
fn states_and_causes_are_their_snake_case_names() {
    assert_eq!(
        serde_json::to_value(State::HalfOpen).unwrap(),
        json!("half_open")
    );
    assert_eq!(
        serde_json::to_value(State::ForcedOpen).unwrap(),
        json!("forced_open")
    );
    assert_eq!(
        serde_json::to_value(TransitionCause::ConsecutiveFailures).unwrap(),
        json!("consecutive_failures")
    );
}

#[test]
fn a_snapshot_has_its_counters_its_config_and_wall_clock_times() {
    let registry = Registry::new();
    let config = Config::builder()
        .failure_threshold(2)
        .failure_rate_threshold(0.5)
        .window_size(4)
        .build()
        .unwrap();
    let breaker = registry.get_or_create("payments", config);
    let _ = breaker.call(|| Ok::<_, ()>(()));
    let _ = breaker.call(|| Err::<(), _>(()));
    let snapshot = serde_json::to_value(&registry.snapshots()[0]).unwrap();

    assert_eq!(snapshot["name"], json!("payments"));
    assert_eq!(snapshot["state"], json!("closed"));
    let metrics = &snapshot["metrics"];
    assert_eq!(metrics["total_calls"], json!(2));
    assert_eq!(metrics["failed_calls"], json!(1));
    assert_eq!(metrics["bulkhead_rejected"], json!(0));
    assert_eq!(metrics["consecutive_failures"], json!(1));
    assert_eq!(metrics["failure_rate"], json!(0.5));
    assert_eq!(metrics["slow_call_rate"], json!(0.0));
    assert!(
        is_rfc3339(metrics["last_failure_at"].as_str().unwrap()),
        "{metrics}"
    );
    assert_eq!(
        metrics["last_transition_at"],
        Value::Null,
        "no transition yet"
    );

    let config = &snapshot["config"];
    assert_eq!(config["failure_threshold"], json!(2));
    assert_eq!(config["recovery_timeout"], json!("1m"));
    assert_eq!(config["window_size"], json!(4));
    assert_eq!(config["failure_rate_threshold"], json!(0.5));
    assert!(config.get("window_duration").is_none(), "off: left out");
    assert!(config.get("slow_call_duration").is_none(), "off: left out");
    assert!(
        config.get("max_concurrent_calls").is_none(),
        "off: left out"
    );
}

#[test]
fn a_concurrency_limit_is_serialized_with_its_rejections() {
    let registry = Registry::new();
    let config = Config::builder().max_concurrent_calls(1).build().unwrap();
    let breaker = registry.get_or_create("inventory", config);
    let _running = breaker.try_acquire().unwrap();
    let _ = breaker.try_acquire();
    let snapshot = serde_json::to_value(&registry.snapshots()[0]).unwrap();
    assert_eq!(snapshot["metrics"]["bulkhead_rejected"], json!(1));
    assert_eq!(snapshot["metrics"]["rejected_calls"], json!(0));
    assert_eq!(snapshot["config"]["max_concurrent_calls"], json!(1));
}

#[test]
fn a_transition_names_its_breaker_states_and_cause() {
    let clock = ManualClock::new();
    let registry = Registry::new();
    let seen: Arc<Mutex<Vec<Transition>>> = Arc::default();
    let sink = Arc::clone(&seen);
    registry.on_transition(move |transition| sink.lock().unwrap().push(transition.clone()));
    let config = Config::builder()
        .failure_threshold(1)
        .clock(clock.clone())
        .build()
        .unwrap();
    registry.get_or_create("mail", config).record_failure();
    let transition = serde_json::to_value(&seen.lock().unwrap()[0]).unwrap();
    assert_eq!(transition["breaker"], json!("mail"));
    assert_eq!(transition["from"], json!("closed"));
    assert_eq!(transition["to"], json!("open"));
    assert_eq!(transition["cause"], json!("consecutive_failures"));
    assert!(
        is_rfc3339(transition["at"].as_str().unwrap()),
        "{transition}"
    );
}

#[test]
fn a_config_written_out_reads_back_the_same() {
    let configs = [
        Config::default(),
        Config::builder()
            .failure_threshold(3)
            .recovery_timeout(Duration::from_millis(90_250))
            .window_duration(Duration::from_secs(10))
            .minimum_calls(20)
            .slow_call_duration(Duration::from_millis(1500))
            .slow_call_rate_threshold(0.8)
            .recovery_backoff(2.0)
            .jitter(0.1)
            .build()
            .unwrap(),
    ];
    for config in configs {
        let json = serde_json::to_string(&config).unwrap();
        assert_eq!(
            serde_json::from_str::<Config>(&json).unwrap(),
            config,
            "{json}"
        );
        let toml = toml::to_string(&config).unwrap();
        assert_eq!(toml::from_str::<Config>(&toml).unwrap(), config, "{toml}");
    }
    let written = serde_json::to_value(
        Config::builder()
            .recovery_timeout(Duration::from_millis(90_250))
            .build()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(written["recovery_timeout"], json!("1m30s250ms"));
}

#[test]
fn a_config_with_a_mistake_is_refused_with_the_option_tables_message() {
    let err = serde_json::from_value::<Config>(json!({ "window_size": 5, "minimum_calls": 8 }))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "`minimum_calls` (8) must be at most `window_size` (5), or the window never holds \
         enough calls to judge a rate: lower `minimum_calls` or raise `window_size`"
    );
    let err = serde_json::from_value::<Config>(json!({ "jitter": "lots" })).unwrap_err();
    assert_eq!(
        err.to_string(),
        "`jitter` takes a number, without quotes: write `jitter = 0.1`"
    );
}
