use circuit_runtime::{circuit_breaker, CircuitOpenError};

#[derive(Debug)]
pub struct Unavailable;

impl From<CircuitOpenError> for Unavailable {
    fn from(_: CircuitOpenError) -> Self {
        Unavailable
    }
}

#[circuit_breaker(name = "quotes", fallback = cached)]
async fn fetch(id: u32) -> Result<u32, Unavailable> {
    Ok(id)
}

fn cached(id: u32) -> Result<u32, Unavailable> {
    Ok(id)
}

fn main() {
    let _ = futures::executor::block_on(fetch(1));
}
