use circuit_runtime::{circuit_breaker, CircuitOpenError};

#[derive(Debug)]
pub struct Unavailable;

impl From<CircuitOpenError> for Unavailable {
    fn from(_: CircuitOpenError) -> Self {
        Unavailable
    }
}

#[derive(Debug)]
pub enum ApiError {
    Timeout,
}

#[circuit_breaker(name = "quotes")]
fn fetch() -> Result<u32, ApiError> {
    Err(ApiError::Timeout)
}

fn main() {
    let _ = fetch();
}
