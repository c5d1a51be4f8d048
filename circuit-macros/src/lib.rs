//! The `#[circuit_breaker]` attribute. Depend on `circuit-runtime` and use it
//! from there: `use circuit_runtime::circuit_breaker;`.
