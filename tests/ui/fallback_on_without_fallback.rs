use circuit_runtime::{circuit_breaker, CircuitOpenError};

#[derive(Debug)]
pub struct Unavailable;

impl From<CircuitOpenError> for Unavailable {
    fn from(_: CircuitOpenError) -> Self {
        Unavailable
    }
}

#[circuit_breaker(name = "quotes", fallback_on = "any_error")]
fn fetch(id: u32) -> Result<u32, Unavailable> {
    Ok(id)
}

fn main() {
    let _ = fetch(1);
}
