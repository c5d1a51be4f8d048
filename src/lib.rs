//! Integration tests and examples for the circuit breaker crates live in `tests/` and `examples/`.

/// The README's Rust snippets, compiled and run as doctests by `cargo test
/// --workspace`, so none of them can drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeSnippets;
