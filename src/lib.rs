//! Integration tests and examples for the circuit breaker crates live in `tests/` and `examples/`.
