use circuit_runtime::{circuit_breaker, CircuitOpenError};

#[derive(Debug)]
pub struct Unavailable;

impl From<CircuitOpenError> for Unavailable {
    fn from(_: CircuitOpenError) -> Self {
        Unavailable
    }
}

pub struct Host {
    pub addr: std::net::SocketAddr,
}

#[circuit_breaker(name = "hosts", key = host)]
fn fetch(host: &Host) -> Result<u16, Unavailable> {
    Ok(host.addr.port())
}

fn main() {
    let _ = fetch(&Host { addr: ([127, 0, 0, 1], 80).into() });
}
