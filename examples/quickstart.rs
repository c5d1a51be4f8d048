//! A breaker's whole life in one synchronous program: it closes, trips,
//! rejects, recovers, and the registry shows each step.
//!
//! Run it with `cargo run --example quickstart`.

use std::time::Duration;

use circuit_runtime::{registry, CallError, Config, ConfigError, ManualClock};

/// A stand-in for a real dependency that is healthy until it is not.
fn fetch_quote(symbol: &str, healthy: bool) -> Result<f64, String> {
    if healthy {
        Ok(if symbol == "RUST" { 101.5 } else { 42.0 })
    } else {
        Err(format!("{symbol}: connection refused"))
    }
}

fn show_registry(step: &str) {
    println!("  registry after {step}:");
    for snapshot in registry().snapshots() {
        let m = &snapshot.metrics;
        println!(
            "    {:<8} {:<10} calls={} ok={} failed={} rejected={}",
            snapshot.name,
            snapshot.state,
            m.total_calls,
            m.successful_calls,
            m.failed_calls,
            m.rejected_calls
        );
    }
}

fn main() -> Result<(), ConfigError> {
    // A manual clock lets the example skip the recovery timeout instead of
    // sleeping through it; real programs leave the clock out.
    let clock = ManualClock::new();
    let quotes = registry().get_or_create(
        "quotes",
        Config::builder()
            .failure_threshold(3)
            .recovery_timeout(Duration::from_secs(30))
            .clock(clock.clone())
            .build()?,
    );

    println!("1. closed: the dependency is healthy, calls run");
    for symbol in ["RUST", "CRAB"] {
        let price = quotes.call(|| fetch_quote(symbol, true));
        println!("  {symbol}: {price:?}");
    }
    show_registry("healthy calls");

    println!("2. tripping: three failures in a row open the breaker");
    for _ in 0..3 {
        if let Err(CallError::Failed(err)) = quotes.call(|| fetch_quote("RUST", false)) {
            println!("  failed: {err}");
        }
    }
    show_registry("three failures");

    println!("3. open: calls are rejected without running");
    if let Err(CallError::Rejected(open)) = quotes.call(|| fetch_quote("RUST", true)) {
        println!("  rejected: {open}");
    }
    show_registry("a rejected call");

    println!("4. half-open: 30 s later the next call is a trial");
    clock.advance(Duration::from_secs(30));
    let trial = quotes
        .try_acquire()
        .expect("the recovery timeout has elapsed");
    show_registry("the trial began");
    match fetch_quote("RUST", true) {
        Ok(price) => {
            println!("  trial succeeded: {price}");
            trial.record_success();
        }
        Err(_) => trial.record_failure(),
    }

    println!("5. closed again: the trial's success closed the breaker");
    let price = quotes.call(|| fetch_quote("CRAB", true));
    println!("  CRAB: {price:?}");
    show_registry("recovery");
    Ok(())
}
