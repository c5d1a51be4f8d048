//! Retries composed with a breaker, in one async program on tokio:
//! a flaky dependency is retried with backoff until it answers; when it
//! goes down for good, the breaker opens and the retries stop at once.
//!
//! Run it with `cargo run --example retry`. Tokio's clock is paused, so the
//! delays pass at once and the program prints the waits it would make.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use circuit_runtime::retry::{Classify, ErrorCategory};
use circuit_runtime::{circuit_breaker, registry, retry, CircuitOpenError};

#[derive(Debug)]
enum InventoryError {
    /// The connection dropped: worth another try.
    Reset,
    /// The item does not exist: no retry can help.
    UnknownItem(u32),
    /// The breaker is open: the dependency is down.
    Unavailable(CircuitOpenError),
}

impl From<CircuitOpenError> for InventoryError {
    fn from(open: CircuitOpenError) -> Self {
        InventoryError::Unavailable(open)
    }
}

impl std::fmt::Display for InventoryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InventoryError::Reset => f.write_str("connection reset"),
            InventoryError::UnknownItem(item) => write!(f, "no item {item}"),
            InventoryError::Unavailable(open) => open.fmt(f),
        }
    }
}

impl Classify for InventoryError {
    fn category(&self) -> ErrorCategory {
        match self {
            InventoryError::Reset => ErrorCategory::Network,
            InventoryError::UnknownItem(_) | InventoryError::Unavailable(_) => {
                ErrorCategory::Permanent
            }
        }
    }
}

/// How many of the next calls fail, and how many calls were made.
static FAILURES_AHEAD: AtomicU32 = AtomicU32::new(0);
static CALLS: AtomicU32 = AtomicU32::new(0);

/// Tokio's sleep, announcing each wait.
async fn sleep(delay: Duration) {
    println!("    waiting {delay:?} before the next attempt");
    tokio::time::sleep(delay).await;
}

/// Up to four retries, 100 ms doubling to at most 1 s, with full jitter;
/// every attempt through the `inventory` breaker, which opens after five
/// failures in a row.
#[retry(max_retries = 4, base_delay = "100ms", max_delay = "1s", sleeper = sleep)]
#[circuit_breaker(name = "inventory", failure_threshold = 5, recovery_timeout = "30s")]
async fn stock(item: u32) -> Result<u32, InventoryError> {
    CALLS.fetch_add(1, Ordering::Relaxed);
    if item == 0 {
        return Err(InventoryError::UnknownItem(item));
    }
    let failing = FAILURES_AHEAD
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |ahead| {
            ahead.checked_sub(1)
        })
        .is_ok();
    if failing {
        Err(InventoryError::Reset)
    } else {
        Ok(item * 10)
    }
}

async fn ask(what: &str, item: u32) {
    let before = CALLS.load(Ordering::Relaxed);
    let answer = match stock(item).await {
        Ok(count) => format!("{count} in stock"),
        Err(err) => format!("error: {err}"),
    };
    let attempts = CALLS.load(Ordering::Relaxed) - before;
    println!("{what}: {answer}, after {attempts} attempt(s)\n");
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    ask("a healthy dependency", 7).await;

    FAILURES_AHEAD.store(2, Ordering::Relaxed);
    ask("two dropped connections, then an answer", 7).await;

    ask("an unknown item: permanent, not retried", 0).await;

    FAILURES_AHEAD.store(u32::MAX, Ordering::Relaxed);
    ask("the dependency goes down: the breaker opens mid-retry", 7).await;
    ask("still down: rejected at once, nothing retried", 7).await;

    let metrics = registry().get("inventory").expect("registered").metrics();
    println!(
        "inventory breaker: {} calls, {} failed, {} rejected, {} retry attempts",
        metrics.total_calls, metrics.failed_calls, metrics.rejected_calls, metrics.retry_attempts
    );
}
