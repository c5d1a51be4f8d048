use circuit_runtime::{circuit_breaker, CircuitOpenError};

#[derive(Debug)]
pub struct Unavailable;

impl From<CircuitOpenError> for Unavailable {
    fn from(_: CircuitOpenError) -> Self {
        Unavailable
    }
}

#[circuit_breaker(
    name = quotes,
    failure_threshold = "5",
    half_open_max_calls = 1.5,
    jitter = "0.1",
    recovery_timeout = 1.5,
    fallback = "cached",
    fallback_on = "always",
)]
fn fetch() -> Result<u32, Unavailable> {
    Ok(1)
}

fn main() {
    let _ = fetch();
}
