use std::time::Duration;

use circuit_runtime::{circuit_breaker, CircuitOpenError};

async fn nap(_: Duration) {}

#[derive(Debug)]
pub struct Unavailable;

impl From<CircuitOpenError> for Unavailable {
    fn from(_: CircuitOpenError) -> Self {
        Unavailable
    }
}

#[circuit_breaker(timeout = "2s", sleeper = nap)]
async fn fetch() -> Result<u32, Unavailable> {
    Ok(1)
}

fn main() {
    let _ = fetch();
}
