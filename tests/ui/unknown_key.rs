use circuit_runtime::{circuit_breaker, CircuitOpenError};

#[derive(Debug)]
pub struct Unavailable;

impl From<CircuitOpenError> for Unavailable {
    fn from(_: CircuitOpenError) -> Self {
        Unavailable
    }
}

#[circuit_breaker(failure_treshold = 3)]
fn fetch() -> Result<u32, Unavailable> {
    Ok(1)
}

#[circuit_breaker(colour = "red")]
fn paint() -> Result<u32, Unavailable> {
    Ok(1)
}

fn main() {
    let _ = (fetch(), paint());
}
