use circuit_runtime::{circuit_breaker, CircuitOpenError};

#[derive(Debug)]
pub struct Unavailable;

impl From<CircuitOpenError> for Unavailable {
    fn from(_: CircuitOpenError) -> Self {
        Unavailable
    }
}

#[circuit_breaker(name = "hosts", max_keys = 100)]
fn fetch(host: &str) -> Result<usize, Unavailable> {
    Ok(host.len())
}

#[circuit_breaker(name = "topics", key = topic, max_keys = 0)]
fn publish(topic: &str) -> Result<usize, Unavailable> {
    Ok(topic.len())
}

fn main() {
    let _ = fetch("a");
    let _ = publish("a");
}
