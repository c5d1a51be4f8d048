//! A breaker's whole life in one synchronous program, through
//! `#[circuit_breaker]`: it closes, trips, rejects (answered by a
//! fallback), recovers, and the registry shows each step.
//!
//! Run it with `cargo run --example quickstart`.

use std::cell::Cell;
use std::time::Duration;

use circuit_runtime::{circuit_breaker, registry, CircuitOpenError, Config, ManualClock};

#[derive(Debug)]
enum QuoteError {
    ConnectionRefused(String),
    Unavailable(CircuitOpenError),
}

impl From<CircuitOpenError> for QuoteError {
    fn from(open: CircuitOpenError) -> Self {
        QuoteError::Unavailable(open)
    }
}

impl std::fmt::Display for QuoteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QuoteError::ConnectionRefused(symbol) => write!(f, "{symbol}: connection refused"),
            QuoteError::Unavailable(open) => open.fmt(f),
        }
    }
}

thread_local! {
    /// Whether the stand-in quote service is up.
    static HEALTHY: Cell<bool> = const { Cell::new(true) };
}

/// The protected call: after three failures in a row, calls are rejected
/// for 30 seconds and answered by `cached_quote` instead.
#[circuit_breaker(
    name = "quotes",
    failure_threshold = 3,
    recovery_timeout = "30s",
    fallback = cached_quote
)]
fn fetch_quote(symbol: &str) -> Result<f64, QuoteError> {
    if HEALTHY.get() {
        Ok(if symbol == "RUST" { 101.5 } else { 42.0 })
    } else {
        Err(QuoteError::ConnectionRefused(symbol.to_owned()))
    }
}

/// Answers while the breaker is open: the last known price.
#[allow(clippy::unnecessary_wraps)] // a fallback returns what the function returns
fn cached_quote(symbol: &str) -> Result<f64, QuoteError> {
    println!("  (fallback: cached price for {symbol})");
    Ok(100.0)
}

/// A call that shares nothing with `quotes`: its own breaker, named after
/// the function's path, created on its first call.
#[circuit_breaker(failure_threshold = 5)]
fn fetch_news() -> Result<&'static str, QuoteError> {
    Ok("markets calm")
}

fn show_registry(step: &str) {
    println!("  registry after {step}:");
    for snapshot in registry().snapshots() {
        let m = &snapshot.metrics;
        println!(
            "    {:<24} {:<10} calls={} ok={} failed={} rejected={}",
            snapshot.name,
            snapshot.state.to_string(),
            m.total_calls,
            m.successful_calls,
            m.failed_calls,
            m.rejected_calls
        );
    }
}

fn main() {
    // Configuring "quotes" with a manual clock lets this program skip the
    // 30-second recovery timeout instead of sleeping through it: the name
    // gets a breaker on that clock, which the attribute then uses. Real
    // programs leave this out (tests keep it).
    let clock = ManualClock::new();
    let config = Config::builder()
        .failure_threshold(3)
        .recovery_timeout(Duration::from_secs(30))
        .clock(clock.clone())
        .build()
        .expect("a valid configuration");
    registry().configure("quotes", config);

    println!("1. closed: the service is healthy, calls run");
    for symbol in ["RUST", "CRAB"] {
        println!(
            "  {symbol}: {:?}",
            fetch_quote(symbol).map_err(|e| e.to_string())
        );
    }
    println!("  news: {:?}", fetch_news().map_err(|e| e.to_string()));
    show_registry("healthy calls");

    println!("2. tripping: three failures in a row open the breaker");
    HEALTHY.set(false);
    for _ in 0..3 {
        if let Err(err) = fetch_quote("RUST") {
            println!("  failed: {err}");
        }
    }
    show_registry("three failures");

    println!("3. open: calls are rejected without running; the fallback answers");
    HEALTHY.set(true);
    println!(
        "  RUST: {:?}",
        fetch_quote("RUST").map_err(|e| e.to_string())
    );
    show_registry("a rejected call");

    println!("4. recovering: 30 s later the next call is a trial, and it succeeds");
    clock.advance(Duration::from_secs(30));
    println!(
        "  RUST: {:?}",
        fetch_quote("RUST").map_err(|e| e.to_string())
    );
    show_registry("a successful trial");

    println!("5. closed again: calls run");
    println!(
        "  CRAB: {:?}",
        fetch_quote("CRAB").map_err(|e| e.to_string())
    );
    show_registry("recovery");
}
