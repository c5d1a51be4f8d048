use circuit_runtime::{circuit_breaker, CircuitOpenError};

#[derive(Debug)]
pub struct Unavailable;

impl From<CircuitOpenError> for Unavailable {
    fn from(_: CircuitOpenError) -> Self {
        Unavailable
    }
}

#[circuit_breaker(name = "quotes", fallback = cached)]
fn fetch((id, scale): (u32, u32)) -> Result<u32, Unavailable> {
    Ok(id * scale)
}

fn cached(pair: (u32, u32)) -> Result<u32, Unavailable> {
    Ok(pair.0)
}

fn main() {
    let _ = fetch((1, 2));
}
