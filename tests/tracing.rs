//! The `tracing` feature: events as logs under the target
//! `circuit_runtime`, with the fields and levels the README promises,
//! captured by a subscriber of the test's own.

use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use circuit_runtime::retry::{Jitter, RetryConfig};
use circuit_runtime::{CircuitBreaker, Config, FallbackReason, ManualClock};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Level, Metadata, Subscriber};

/// One captured log line: its level, target and fields, the message
/// among them.
#[derive(Clone, Debug, PartialEq)]
struct Line {
    level: Level,
    target: String,
    fields: Vec<(String, String)>,
}

impl Line {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(field, _)| field == name)
            .map(|(_, value)| value.as_str())
    }
}

/// A subscriber that keeps every event at `max_level` or above.
struct Capture {
    max_level: Level,
    lines: Arc<Mutex<Vec<Line>>>,
}

struct Fields<'a>(&'a mut Vec<(String, String)>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().to_owned(), value.to_owned()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }
}

impl Subscriber for Capture {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        *metadata.level() <= self.max_level
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        let mut fields = Vec::new();
        event.record(&mut Fields(&mut fields));
        self.lines.lock().unwrap().push(Line {
            level: *event.metadata().level(),
            target: event.metadata().target().to_owned(),
            fields,
        });
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

/// Runs `f` with a capturing subscriber for this thread, and returns
/// what it logged.
fn logged(max_level: Level, f: impl FnOnce()) -> Vec<Line> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let capture = Capture {
        max_level,
        lines: Arc::clone(&lines),
    };
    tracing::subscriber::with_default(capture, f);
    let lines = lines.lock().unwrap().clone();
    lines
}

fn breaker(name: &str, clock: &ManualClock) -> CircuitBreaker {
    let config = Config::builder()
        .failure_threshold(1)
        .recovery_timeout(Duration::from_secs(30))
        .clock(clock.clone())
        .build()
        .unwrap();
    CircuitBreaker::new(name, config)
}

#[test]
fn opening_is_a_warning_and_every_other_transition_information() {
    let clock = ManualClock::new();
    let breaker = breaker("tracing.transitions", &clock);
    let lines = logged(Level::INFO, || {
        breaker.record_failure();
        clock.advance(Duration::from_secs(30));
        breaker.call(|| Ok::<_, ()>(())).unwrap();
    });
    let summary: Vec<_> = lines
        .iter()
        .map(|line| {
            (
                line.level,
                line.target.as_str(),
                line.field("breaker").unwrap(),
                line.field("from").unwrap(),
                line.field("to").unwrap(),
                line.field("cause").unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                Level::WARN,
                "circuit_runtime",
                "tracing.transitions",
                "closed",
                "open",
                "consecutive_failures"
            ),
            (
                Level::INFO,
                "circuit_runtime",
                "tracing.transitions",
                "open",
                "half_open",
                "recovery_timeout_elapsed"
            ),
            (
                Level::INFO,
                "circuit_runtime",
                "tracing.transitions",
                "half_open",
                "closed",
                "trials_succeeded"
            ),
        ]
    );
    assert_eq!(lines[0].field("message"), Some("circuit breaker opened"));
}

#[test]
fn rejections_and_fallbacks_are_debug_and_absent_above_it() {
    let clock = ManualClock::new();
    let breaker = breaker("tracing.calls", &clock);
    let act = || {
        breaker.record_failure();
        clock.advance(Duration::from_secs(10));
        let _ = breaker.try_acquire();
        breaker.record_fallback(FallbackReason::Rejected);
    };
    let at_info = logged(Level::INFO, act);
    assert_eq!(at_info.len(), 1, "only the opening: {at_info:?}");

    breaker.reset();
    let at_debug = logged(Level::DEBUG, act);
    let debug: Vec<_> = at_debug
        .iter()
        .filter(|line| line.level == Level::DEBUG)
        .collect();
    assert_eq!(debug.len(), 2, "{at_debug:?}");
    assert_eq!(debug[0].field("message"), Some("call rejected"));
    assert_eq!(debug[0].field("breaker"), Some("tracing.calls"));
    assert_eq!(debug[0].field("state"), Some("open"));
    assert_eq!(debug[0].field("retry_after"), Some("20s"));
    assert_eq!(debug[1].field("message"), Some("fallback ran"));
    assert_eq!(debug[1].field("reason"), Some("rejected"));
}

#[test]
fn a_slow_call_is_debug_with_its_duration_and_threshold() {
    let clock = ManualClock::new();
    let config = Config::builder()
        .slow_call_duration(Duration::from_secs(1))
        .clock(clock.clone())
        .build()
        .unwrap();
    let breaker = CircuitBreaker::new("tracing.slow", config);
    let lines = logged(Level::DEBUG, || {
        breaker
            .call(|| {
                clock.advance(Duration::from_millis(1500));
                Ok::<_, ()>(())
            })
            .unwrap();
    });
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0].level, Level::DEBUG);
    assert_eq!(lines[0].field("message"), Some("slow call"));
    assert_eq!(lines[0].field("duration"), Some("1s500ms"));
    assert_eq!(lines[0].field("threshold"), Some("1s"));
}

#[test]
fn a_reconfiguration_is_information_naming_what_changed() {
    let breaker = CircuitBreaker::new("tracing.reconfigured", Config::default());
    let lines = logged(Level::INFO, || {
        breaker.reconfigure(
            Config::builder()
                .failure_threshold(3)
                .half_open_max_calls(2)
                .build()
                .unwrap(),
        );
    });
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0].level, Level::INFO);
    assert_eq!(
        lines[0].field("message"),
        Some("circuit breaker reconfigured")
    );
    assert_eq!(lines[0].field("breaker"), Some("tracing.reconfigured"));
    assert_eq!(
        lines[0].field("changed"),
        Some("failure_threshold,half_open_max_calls")
    );
}

#[test]
fn a_rejection_at_the_call_limit_says_so() {
    let breaker = CircuitBreaker::new(
        "tracing.limit",
        Config::builder().max_concurrent_calls(1).build().unwrap(),
    );
    let running = breaker.try_acquire().unwrap();
    let lines = logged(Level::DEBUG, || {
        assert!(breaker.try_acquire().unwrap_err().is_concurrency_limit());
    });
    drop(running);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(
        lines[0].field("message"),
        Some("call rejected: at its limit of concurrent calls")
    );
    assert_eq!(lines[0].field("state"), Some("closed"));
    assert_eq!(lines[0].field("retry_after"), None);
}

#[test]
fn a_retry_is_debug_with_its_attempt_delay_and_category() {
    let clock = ManualClock::new();
    let breaker = CircuitBreaker::new(
        "tracing.retried",
        Config::builder()
            .failure_threshold(10)
            .clock(clock.clone())
            .build()
            .unwrap(),
    );
    let config = RetryConfig::builder()
        .max_retries(2)
        .base_delay(Duration::from_millis(1500))
        .jitter(Jitter::None)
        .clock(clock.clone())
        .build()
        .unwrap();
    let at_info = logged(Level::INFO, || {
        let _ = breaker.call_retrying(&config, || {
            Err::<(), _>(std::io::Error::from(std::io::ErrorKind::ConnectionReset))
        });
    });
    assert_eq!(at_info, [], "retries are debug");

    let mut attempts = 0;
    let lines = logged(Level::DEBUG, || {
        let result = breaker.call_retrying(&config, || {
            attempts += 1;
            if attempts < 3 {
                Err(std::io::Error::from(std::io::ErrorKind::ConnectionReset))
            } else {
                Ok(())
            }
        });
        assert!(result.is_ok());
    });
    let retries: Vec<_> = lines
        .iter()
        .filter(|line| line.field("message") == Some("retrying call"))
        .map(|line| {
            (
                line.level,
                line.target.as_str(),
                line.field("breaker"),
                line.field("attempt"),
                line.field("delay"),
                line.field("category"),
            )
        })
        .collect();
    assert_eq!(
        retries,
        [
            (
                Level::DEBUG,
                "circuit_runtime",
                Some("tracing.retried"),
                Some("2"),
                Some("1s500ms"),
                Some("network")
            ),
            (
                Level::DEBUG,
                "circuit_runtime",
                Some("tracing.retried"),
                Some("3"),
                Some("3s"),
                Some("network")
            ),
        ],
        "{lines:?}"
    );
}
