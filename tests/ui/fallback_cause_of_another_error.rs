use circuit_runtime::{circuit_breaker, CircuitOpenError, FallbackCause};

#[derive(Debug)]
pub struct Unavailable;

impl From<CircuitOpenError> for Unavailable {
    fn from(_: CircuitOpenError) -> Self {
        Unavailable
    }
}

#[circuit_breaker(name = "quotes", fallback = cached, fallback_on = "any_error")]
fn fetch(id: u32) -> Result<u32, Unavailable> {
    Ok(id)
}

// The cause's error type must be the function's.
fn cached(id: u32, _cause: FallbackCause<'_, std::io::Error>) -> Result<u32, Unavailable> {
    Ok(id)
}

fn main() {
    let _ = fetch(1);
}
