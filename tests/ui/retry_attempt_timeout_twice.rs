use std::time::Duration;

use circuit_runtime::{circuit_breaker, retry, CircuitOpenError, TimeoutError};

async fn nap(_: Duration) {}

#[derive(Debug)]
pub enum ApiError {
    Unavailable,
    TimedOut,
}

impl From<CircuitOpenError> for ApiError {
    fn from(_: CircuitOpenError) -> Self {
        ApiError::Unavailable
    }
}

impl From<TimeoutError> for ApiError {
    fn from(_: TimeoutError) -> Self {
        ApiError::TimedOut
    }
}

#[retry(sleeper = nap, attempt_timeout = "1s")]
#[circuit_breaker(timeout = "2s", sleeper = nap)]
async fn fetch() -> Result<u32, ApiError> {
    Ok(1)
}

fn main() {
    let _ = fetch();
}
