use circuit_runtime::{circuit_breaker, CircuitOpenError};

#[derive(Debug)]
pub struct Unavailable;

impl From<CircuitOpenError> for Unavailable {
    fn from(_: CircuitOpenError) -> Self {
        Unavailable
    }
}

#[circuit_breaker(key = host)]
fn fetch(host: &str) -> Result<usize, Unavailable> {
    Ok(host.len())
}

fn main() {
    let _ = fetch("a");
}
