use circuit_runtime::{circuit_breaker, CircuitOpenError};

#[derive(Debug)]
pub struct Unavailable;

impl From<CircuitOpenError> for Unavailable {
    fn from(_: CircuitOpenError) -> Self {
        Unavailable
    }
}

#[circuit_breaker(
    failure_threshold = 0,
    success_threshold = 70000,
    half_open_max_calls = -1,
    window_size = 2000000,
    minimum_calls = 0,
    failure_rate_threshold = 1.5,
    slow_call_rate_threshold = 0.0,
    slow_call_duration = "0ms",
    recovery_backoff = 0.5,
    jitter = 2.0,
    recovery_timeout = 0,
)]
fn fetch() -> Result<u32, Unavailable> {
    Ok(1)
}

fn main() {
    let _ = fetch();
}
