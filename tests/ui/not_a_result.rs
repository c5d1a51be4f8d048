use circuit_runtime::{circuit_breaker, CircuitOpenError};

#[derive(Debug)]
pub struct Unavailable;

impl From<CircuitOpenError> for Unavailable {
    fn from(_: CircuitOpenError) -> Self {
        Unavailable
    }
}

#[circuit_breaker(name = "quotes")]
fn fetch() -> u32 {
    1
}

#[circuit_breaker(name = "log")]
fn log(line: &str) {
    println!("{line}");
}

async fn cached() -> Option<u32> {
    None
}

#[circuit_breaker(name = "cache", fallback = cached)]
async fn lookup() -> Option<u32> {
    Some(1)
}

#[circuit_breaker(name = "search")]
async fn search() -> Vec<u32> {
    Vec::new()
}

fn main() {
    let _ = fetch();
    log("x");
    drop(lookup());
    drop(search());
}
