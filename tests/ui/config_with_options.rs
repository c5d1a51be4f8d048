use circuit_runtime::{circuit_breaker, CircuitOpenError};

#[derive(Debug)]
pub struct Unavailable;

impl From<CircuitOpenError> for Unavailable {
    fn from(_: CircuitOpenError) -> Self {
        Unavailable
    }
}

fn quotes_config() -> circuit_runtime::Config {
    circuit_runtime::Config::default()
}

#[circuit_breaker(config = quotes_config, failure_threshold = 3, recovery_timeout = "30s")]
fn fetch() -> Result<u32, Unavailable> {
    Ok(1)
}

fn main() {
    let _ = fetch();
}
