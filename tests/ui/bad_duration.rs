use circuit_runtime::{circuit_breaker, CircuitOpenError};

#[derive(Debug)]
pub struct Unavailable;

impl From<CircuitOpenError> for Unavailable {
    fn from(_: CircuitOpenError) -> Self {
        Unavailable
    }
}

#[circuit_breaker(recovery_timeout = "5 parsecs")]
fn unknown_unit() -> Result<u32, Unavailable> {
    Ok(1)
}

#[circuit_breaker(recovery_timeout = "10")]
fn no_unit() -> Result<u32, Unavailable> {
    Ok(1)
}

#[circuit_breaker(slow_call_duration = "1.5s")]
fn fraction() -> Result<u32, Unavailable> {
    Ok(1)
}

#[circuit_breaker(half_open_timeout = "30s1m")]
fn out_of_order() -> Result<u32, Unavailable> {
    Ok(1)
}

fn main() {
    let _ = (unknown_unit(), no_unit(), fraction(), out_of_order());
}
