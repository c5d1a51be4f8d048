use circuit_runtime::{circuit_breaker, retry, CircuitOpenError};

#[derive(Debug)]
pub struct Unavailable;

impl From<CircuitOpenError> for Unavailable {
    fn from(_: CircuitOpenError) -> Self {
        Unavailable
    }
}

#[circuit_breaker(name = "quotes")]
#[retry(max_retries = 3)]
fn fetch() -> Result<u32, Unavailable> {
    Ok(1)
}

fn main() {
    let _ = fetch();
}
