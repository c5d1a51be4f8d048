//! Compile errors of `#[circuit_breaker]`, each in `tests/ui/*.rs` beside its
//! reviewed `.stderr`, and the shapes it accepts in `tests/ui/pass/`.
//!
//! Regenerate the expected output with `TRYBUILD=overwrite cargo test --test
//! ui`, then read every changed `.stderr`: each message must point at the
//! offending token and say what to write instead.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
    cases.pass("tests/ui/pass/*.rs");
}
