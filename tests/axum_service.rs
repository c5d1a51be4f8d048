//! The example service over real HTTP on loopback: its handler falls back
//! when the upstream fails, the health endpoint and `/metrics` report the
//! open circuit, and recovery shows in both. The example's own `start`
//! runs in this process, on ephemeral ports; its breakers run with the
//! options of `examples/axum_service.toml` on a manual clock, so no step
//! depends on how fast the machine is, and the counts below follow the
//! file.

#[allow(dead_code)] // its `main` is the example's, not this test's
#[path = "../examples/axum_service.rs"]
mod axum_service;

#[path = "common/service.rs"]
mod service;

use std::ffi::OsString;

use circuit_runtime::Config;
use serde_json::{json, Value};
use service::{circuit, config_of, json, on_a_manual_clock, request};

/// The lines of a scrape that start with `prefix`.
fn scraped(scrape: &str, prefix: &str) -> Vec<String> {
    scrape
        .lines()
        .filter(|line| line.starts_with(prefix))
        .map(str::to_owned)
        .collect()
}

/// The value of header `name`.
fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(header, _)| header == name)
        .map(|(_, value)| value.as_str())
}

/// Each `(metric, value)` is in `scrape`, once, with that value.
fn assert_scraped(scrape: &str, expected: &[(&str, u32)]) {
    for (metric, value) in expected {
        assert_eq!(
            scraped(scrape, &format!("{metric} ")),
            [format!("{metric} {value}")],
            "{scrape}"
        );
    }
}

/// The failures after one success that open a breaker configured with
/// `config`, which has a failure rate threshold: the first that brings
/// its window to `minimum_calls` outcomes and the rate to the threshold,
/// unless `failure_threshold` failures in a row come first.
fn failures_to_trip(config: &Config) -> u32 {
    let rate = config
        .failure_rate_threshold()
        .expect("the file gives `inventory` a failure rate threshold");
    let by_rate = (1..config.window_size().unwrap_or(u32::MAX))
        .find(|&failures| {
            failures + 1 >= config.minimum_calls()
                && f64::from(failures) / f64::from(failures + 1) >= rate
        })
        .expect("the rate rule can trip within the window");
    by_rate.min(config.failure_threshold())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_falls_back_reports_the_open_circuit_and_recovers() {
    let addresses = axum_service::start(0).await.unwrap();
    let clock = on_a_manual_clock(&["quotes", "inventory"]);
    let (service, upstream) = (addresses.service, addresses.upstream);
    let (quotes, inventory) = (config_of("quotes"), config_of("inventory"));
    let failures_in_a_row = quotes.failure_threshold();

    let (status, fresh) = json(service, "/quotes/7").await;
    assert_eq!((status, &fresh["source"]), (200, &Value::from("upstream")));
    let cached = json!({ "id": 7, "price": fresh["price"], "source": "cache" });
    assert_eq!(request(service, "GET", "/inventory/7").await.2, "21");

    // The upstream fails every request: the fallback answers with the
    // last good quote, and `failure_threshold` failures open `quotes`.
    assert_eq!(request(upstream, "PUT", "/failure-rate/100").await.0, 200);
    for _ in 0..failures_in_a_row {
        let (status, quote) = json(service, "/quotes/7").await;
        assert_eq!((status, &quote), (200, &cached));
    }
    let (_, health) = json(service, "/health/circuits").await;
    assert_eq!(circuit(&health, "quotes")["state"], "open", "{health}");
    // Rejected now, and still answered from the cache; a quote never
    // fetched has nothing cached.
    let (status, quote) = json(service, "/quotes/7").await;
    assert_eq!((status, &quote), (200, &cached));
    let (status, quote) = json(service, "/quotes/8").await;
    assert_eq!(status, 503, "{quote}");
    assert_eq!(
        quote["error"],
        "no quote for 8: the upstream is down and none is cached"
    );

    // `inventory` trips on its failure rate.
    let failures_to_trip = failures_to_trip(&inventory);
    for _ in 0..failures_to_trip {
        assert_eq!(request(service, "GET", "/inventory/7").await.0, 500);
    }
    let (status, headers, body) = request(service, "GET", "/inventory/7").await;
    assert_eq!(
        status, 503,
        "open after {failures_to_trip} failures: {body}"
    );
    assert_eq!(
        header(&headers, "retry-after").map(str::parse),
        Some(Ok(inventory.recovery_timeout().as_secs())),
        "the whole open time is left, on the manual clock"
    );

    for path in ["/health/circuits", "/health/circuit-breakers"] {
        let (status, health) = json(service, path).await;
        assert_eq!(status, 200, "an open circuit is the breaker doing its job");
        assert_eq!(health["healthy"], false);
        assert_eq!(health["open_circuits"], json!(["inventory", "quotes"]));
    }
    let (status, health) = json(service, "/health/circuits?strict=true").await;
    assert_eq!((status, &health["healthy"]), (503, &Value::from(false)));

    let (status, _, scrape) = request(service, "GET", "/metrics").await;
    assert_eq!(status, 200);
    assert_scraped(
        &scrape,
        &[
            (r#"circuit_breaker_state{name="quotes"}"#, 2),
            (
                r#"circuit_breaker_calls_total{name="quotes",result="failure"}"#,
                failures_in_a_row,
            ),
            (
                r#"circuit_breaker_calls_total{name="quotes",result="rejected"}"#,
                2,
            ),
            (
                r#"circuit_breaker_transitions_total{name="quotes",from_state="closed",to_state="open"}"#,
                1,
            ),
            (
                r#"circuit_breaker_fallback_calls_total{name="quotes",reason="failed"}"#,
                failures_in_a_row,
            ),
            (
                r#"circuit_breaker_fallback_calls_total{name="quotes",reason="rejected"}"#,
                2,
            ),
            (r#"circuit_breaker_state{name="inventory"}"#, 2),
            (
                r#"circuit_breaker_calls_total{name="inventory",result="rejected"}"#,
                1,
            ),
        ],
    );

    // The upstream heals; once the open time has passed, the next calls
    // are trials, and they close the breakers.
    assert_eq!(request(upstream, "PUT", "/failure-rate/0").await.0, 200);
    clock.advance(quotes.recovery_timeout().max(inventory.recovery_timeout()));
    let (_, quote) = json(service, "/quotes/7").await;
    assert_eq!(quote["source"], "upstream", "{quote}");
    assert_eq!(request(service, "GET", "/inventory/7").await.0, 200);
    let (status, health) = json(service, "/health/circuits?strict=true").await;
    assert_eq!((status, &health["healthy"]), (200, &Value::from(true)));
    let (_, _, scrape) = request(service, "GET", "/metrics").await;
    assert_scraped(
        &scrape,
        &[
            (r#"circuit_breaker_state{name="quotes"}"#, 0),
            (
                r#"circuit_breaker_transitions_total{name="quotes",from_state="half_open",to_state="closed"}"#,
                1,
            ),
            (r#"circuit_breaker_state{name="inventory"}"#, 0),
        ],
    );
}

#[test]
fn an_invalid_port_is_an_error_that_says_what_is_wrong() {
    let port = |value: &str| axum_service::port_from(Some(OsString::from(value)));
    assert_eq!(axum_service::port_from(None), Ok(0), "unset: any free port");
    assert_eq!(port("8080"), Ok(8080));
    assert_eq!(port("0"), Ok(0));
    for wrong in ["80a", "65536", "-1", "", " 8080"] {
        assert_eq!(
            port(wrong),
            Err(format!(
                "PORT must be a port number from 0 to 65535 (0 for any free one), got `{wrong}`"
            ))
        );
    }
}
