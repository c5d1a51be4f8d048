//! The example service over real HTTP on loopback: its handler falls back
//! when the upstream fails, the health endpoint and `/metrics` report the
//! open circuit, and recovery shows in both. The example's own `start`
//! runs in this process, on ephemeral ports; its breakers run on a manual
//! clock, so no step depends on how fast the machine is.

#[allow(dead_code)] // its `main` is the example's, not this test's
#[path = "../examples/axum_service.rs"]
mod axum_service;

#[path = "common/service.rs"]
mod service;

use std::time::Duration;

use serde_json::Value;
use service::{json, on_a_manual_clock, request};

/// The lines of a scrape that start with `prefix`.
fn scraped(scrape: &str, prefix: &str) -> Vec<String> {
    scrape
        .lines()
        .filter(|line| line.starts_with(prefix))
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_falls_back_reports_the_open_circuit_and_recovers() {
    let addresses = axum_service::start(0).await.unwrap();
    let clock = on_a_manual_clock(&["quotes", "inventory"]);
    let (service, upstream) = (addresses.service, addresses.upstream);

    let (status, quote) = json(service, "/quotes/7").await;
    assert_eq!((status, &quote["source"]), (200, &Value::from("upstream")));
    assert_eq!(request(service, "GET", "/inventory/7").await.2, "21");

    // The upstream fails every request: three failures open each breaker.
    assert_eq!(request(upstream, "PUT", "/failure-rate/100").await.0, 200);
    for _ in 0..4 {
        let (status, quote) = json(service, "/quotes/7").await;
        assert_eq!(status, 200);
        assert_eq!(
            quote["error"], "served from cache",
            "the handler fell back: {quote}"
        );
    }
    for _ in 0..3 {
        assert_eq!(request(service, "GET", "/inventory/7").await.0, 500);
    }
    let (status, headers, body) = request(service, "GET", "/inventory/7").await;
    assert_eq!(status, 503, "{body}");
    let retry_after: u64 = headers
        .iter()
        .find(|(name, _)| name == "retry-after")
        .map(|(_, value)| value.parse().unwrap())
        .expect("a Retry-After header");
    assert_eq!(
        retry_after, 2,
        "the whole open time is left, on the manual clock"
    );

    for path in ["/health/circuits", "/health/circuit-breakers"] {
        let (status, health) = json(service, path).await;
        assert_eq!(status, 200, "an open circuit is the breaker doing its job");
        assert_eq!(health["healthy"], false);
        assert_eq!(
            health["open_circuits"],
            serde_json::json!(["inventory", "quotes"])
        );
    }
    let (status, health) = json(service, "/health/circuits?strict=true").await;
    assert_eq!((status, &health["healthy"]), (503, &Value::from(false)));

    let (status, _, scrape) = request(service, "GET", "/metrics").await;
    assert_eq!(status, 200);
    assert_eq!(
        scraped(&scrape, r#"circuit_breaker_state{name="quotes"}"#),
        [r#"circuit_breaker_state{name="quotes"} 2"#]
    );
    assert_eq!(
        scraped(
            &scrape,
            r#"circuit_breaker_calls_total{name="quotes",result="rejected"}"#
        ),
        [r#"circuit_breaker_calls_total{name="quotes",result="rejected"} 1"#]
    );
    assert_eq!(
        scraped(
            &scrape,
            r#"circuit_breaker_transitions_total{name="quotes",from_state="closed",to_state="open"}"#
        ),
        [
            r#"circuit_breaker_transitions_total{name="quotes",from_state="closed",to_state="open"} 1"#
        ]
    );
    assert_eq!(
        scraped(
            &scrape,
            r#"circuit_breaker_fallback_calls_total{name="quotes",reason="rejected"}"#
        ),
        [r#"circuit_breaker_fallback_calls_total{name="quotes",reason="rejected"} 1"#]
    );

    // The upstream heals; once the 2 s open time has passed, the next
    // calls are trials, and they close the breakers.
    assert_eq!(request(upstream, "PUT", "/failure-rate/0").await.0, 200);
    clock.advance(Duration::from_secs(2));
    let (_, quote) = json(service, "/quotes/7").await;
    assert_eq!(quote["source"], "upstream", "{quote}");
    assert_eq!(request(service, "GET", "/inventory/7").await.0, 200);
    let (status, health) = json(service, "/health/circuits?strict=true").await;
    assert_eq!((status, &health["healthy"]), (200, &Value::from(true)));
    let (_, _, scrape) = request(service, "GET", "/metrics").await;
    assert_eq!(
        scraped(&scrape, r#"circuit_breaker_state{name="quotes"}"#),
        [r#"circuit_breaker_state{name="quotes"} 0"#]
    );
    assert_eq!(
        scraped(
            &scrape,
            r#"circuit_breaker_transitions_total{name="quotes",from_state="half_open",to_state="closed"}"#
        ),
        [
            r#"circuit_breaker_transitions_total{name="quotes",from_state="half_open",to_state="closed"} 1"#
        ]
    );
}
