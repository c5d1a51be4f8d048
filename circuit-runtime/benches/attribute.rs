//! Placeholder until the attribute benchmark lands.
fn main() {}
