use circuit_runtime::{circuit_breaker, registry, CircuitOpenError, State};

#[derive(Debug, PartialEq)]
enum E {
    Down,
    Open,
}
impl From<CircuitOpenError> for E {
    fn from(_: CircuitOpenError) -> Self {
        E::Open
    }
}

#[circuit_breaker(name = "smoke.a", failure_threshold = 2)]
fn a(ok: bool) -> Result<u32, E> {
    if ok {
        return Ok(1);
    }
    Err(E::Down)
}

#[test]
fn smoke() {
    assert_eq!(a(true), Ok(1));
    assert_eq!(a(false), Err(E::Down));
    assert_eq!(a(false), Err(E::Down));
    assert_eq!(registry().get("smoke.a").unwrap().state(), State::Open);
    assert_eq!(a(true), Err(E::Open));
}
