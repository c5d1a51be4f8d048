//! The error type protected test functions return, and the registry lookup
//! the attribute's tests read breakers with. Included by `#[path]`, not
//! through `common`, so test binaries that use it build nothing else;
//! not every one uses every item.
#![allow(dead_code)]

use std::sync::Arc;

use circuit_runtime::{registry, CircuitBreaker, CircuitOpenError};

#[derive(Debug, PartialEq)]
pub enum ApiError {
    Down,
    Unavailable,
}

impl From<CircuitOpenError> for ApiError {
    fn from(_: CircuitOpenError) -> Self {
        ApiError::Unavailable
    }
}

/// The global registry's breaker called `name`.
pub fn registered(name: &str) -> Arc<CircuitBreaker> {
    registry()
        .get(name)
        .unwrap_or_else(|| panic!("no breaker named `{name}`"))
}
