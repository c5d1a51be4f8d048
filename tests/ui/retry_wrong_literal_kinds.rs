use std::time::Duration;

use circuit_runtime::retry;

async fn nap(_: Duration) {}

#[retry(exponential_base = "2", jitter = 1, budget = payments, attempt_timeout = "0s", sleeper = nap)]
async fn fetch() -> Result<u32, std::io::Error> {
    Ok(1)
}

#[retry(retry_if = "is_transient", base_delay = 1.5)]
fn fetch_sync() -> Result<u32, String> {
    Ok(1)
}

fn main() {
    let _ = (fetch(), fetch_sync());
}
