use std::time::Duration;

use circuit_runtime::retry;

#[derive(Debug)]
struct Unavailable;

async fn nap(_: Duration) {}

#[retry(attempt_timeout = "2s", sleeper = nap)]
async fn fetch() -> Result<u32, Unavailable> {
    Ok(1)
}

fn main() {
    let _ = fetch();
}
