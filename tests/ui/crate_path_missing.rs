//! `crate = "..."` is honoured: a path that leads nowhere is an error at
//! the path, not silently replaced by `::circuit_runtime`. (rustc repeats it
//! at the return type, where the call into the runtime is spanned so that
//! "must return a `Result`" points there.)
use circuit_runtime::{circuit_breaker, CircuitOpenError};

#[derive(Debug)]
pub struct Unavailable;

impl From<CircuitOpenError> for Unavailable {
    fn from(_: CircuitOpenError) -> Self {
        Unavailable
    }
}

#[circuit_breaker(crate = "self::resilience", name = "ui.crate_path_missing")]
fn renamed() -> Result<u32, Unavailable> {
    Ok(1)
}

fn main() {
    let _ = renamed();
}
