//! `String` cannot get `From<CircuitOpenError>` in the user's crate (the
//! orphan rule): the message must not stop at suggesting that `impl`.
use circuit_runtime::circuit_breaker;

#[circuit_breaker(name = "ui.foreign_error")]
fn fetch() -> Result<u32, String> {
    Err("down".to_owned())
}

fn main() {
    let _ = fetch();
}
