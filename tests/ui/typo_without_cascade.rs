use circuit_runtime::{circuit_breaker, CircuitOpenError};

#[derive(Debug)]
pub struct Unavailable;

impl From<CircuitOpenError> for Unavailable {
    fn from(_: CircuitOpenError) -> Self {
        Unavailable
    }
}

// One typo in the attribute gives one error: the function is still
// emitted, so its callers (and their types) still check.
#[circuit_breaker(name = "quotes", failure_threshhold = 3)]
pub fn fetch(id: u32) -> Result<u32, Unavailable> {
    Ok(id)
}

fn main() {
    let first: Result<u32, Unavailable> = fetch(1);
    let second = fetch(2).map(|quote| quote + 1);
    let _ = (first, second);
}
