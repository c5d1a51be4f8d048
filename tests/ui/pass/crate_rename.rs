//! `crate = "path"`: the runtime reached through a re-export, as in a crate
//! that wraps circuit-runtime and re-exports it.
#![deny(warnings)]
#![warn(clippy::pedantic)]

mod resilience {
    pub use circuit_runtime::*;
}

use resilience::{circuit_breaker, CircuitOpenError};

#[derive(Debug)]
pub struct Unavailable;

impl From<CircuitOpenError> for Unavailable {
    fn from(_: CircuitOpenError) -> Self {
        Unavailable
    }
}

#[circuit_breaker(crate = "self::resilience", name = "pass.rename")]
fn renamed() -> Result<u32, Unavailable> {
    Ok(1)
}

pub fn main() {
    assert_eq!(renamed().unwrap(), 1);
    assert!(resilience::registry().get("pass.rename").is_some());
}
