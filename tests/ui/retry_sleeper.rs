use std::time::Duration;

use circuit_runtime::retry;

async fn nap(_: Duration) {}

#[retry(max_retries = 3)]
async fn without_sleeper() -> Result<u32, String> {
    Ok(1)
}

#[retry(sleeper = nap)]
fn sync_with_sleeper() -> Result<u32, String> {
    Ok(1)
}

fn main() {
    let _ = (without_sleeper(), sync_with_sleeper());
}
