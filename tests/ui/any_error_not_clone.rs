use circuit_runtime::{circuit_breaker, CircuitOpenError};

#[derive(Debug)]
pub struct Unavailable;

impl From<CircuitOpenError> for Unavailable {
    fn from(_: CircuitOpenError) -> Self {
        Unavailable
    }
}

pub struct Request {
    pub id: u32,
}

#[circuit_breaker(name = "quotes", fallback = cached, fallback_on = "any_error")]
fn fetch(request: Request) -> Result<u32, Unavailable> {
    Ok(request.id)
}

fn cached(request: Request) -> Result<u32, Unavailable> {
    Ok(request.id)
}

fn main() {
    let _ = fetch(Request { id: 1 });
}
