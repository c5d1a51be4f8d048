use circuit_runtime::{circuit_breaker, CircuitOpenError};

#[derive(Debug)]
pub struct Unavailable;

impl From<CircuitOpenError> for Unavailable {
    fn from(_: CircuitOpenError) -> Self {
        Unavailable
    }
}

#[circuit_breaker(window_size = 20, window_duration = "10s")]
fn both_windows() -> Result<u32, Unavailable> {
    Ok(1)
}

#[circuit_breaker(slow_call_rate_threshold = 0.5)]
fn slow_rate_without_duration() -> Result<u32, Unavailable> {
    Ok(1)
}

#[circuit_breaker(window_size = 5, minimum_calls = 8)]
fn minimum_above_window() -> Result<u32, Unavailable> {
    Ok(1)
}

#[circuit_breaker(minimum_calls = 20)]
fn minimum_above_default_window() -> Result<u32, Unavailable> {
    Ok(1)
}

#[circuit_breaker(recovery_timeout = "5m", max_recovery_timeout = "1m")]
fn cap_below_timeout() -> Result<u32, Unavailable> {
    Ok(1)
}

fn main() {
    let _ = (
        both_windows(),
        slow_rate_without_duration(),
        minimum_above_window(),
        minimum_above_default_window(),
        cap_below_timeout(),
    );
}
