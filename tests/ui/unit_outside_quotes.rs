use std::time::Duration;

use circuit_runtime::{circuit_breaker, retry};

async fn nap(_: Duration) {}

// `250ms` is a number with a suffix to Rust: taken as a bare number it
// would mean 250 seconds.
#[retry(attempt_timeout = 250ms, max_delay = 5s, sleeper = nap)]
async fn fetch() -> Result<u32, std::io::Error> {
    Ok(1)
}

#[circuit_breaker(recovery_timeout = 30s, failure_threshold = 5u32)]
fn fetch_sync() -> Result<u32, std::io::Error> {
    Ok(1)
}

fn main() {
    let _ = (fetch(), fetch_sync());
}
