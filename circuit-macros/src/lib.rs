//! The `#[circuit_breaker]` attribute. Depend on `circuit-runtime` and use it
//! from there: `use circuit_runtime::circuit_breaker;`, whose documentation
//! describes every key.

mod args;
mod errors;
mod expand;
mod item;
mod retry;
mod validate;

use proc_macro::TokenStream;

/// Puts a function behind a named breaker of the global registry. See
/// `circuit_runtime::circuit_breaker` for the keys and examples.
#[proc_macro_attribute]
pub fn circuit_breaker(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::circuit_breaker(args.into(), item.into()).into()
}

/// Retries a function that failed, with backoff, jitter and a budget;
/// written above `#[circuit_breaker]`, every attempt goes through the
/// breaker. See `circuit_runtime::retry` (the attribute) for the keys.
#[proc_macro_attribute]
pub fn retry(args: TokenStream, item: TokenStream) -> TokenStream {
    retry::retry(args.into(), item.into()).into()
}
