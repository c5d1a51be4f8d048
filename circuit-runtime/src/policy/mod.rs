//! Timing policies: how a delay grows from one attempt to the next, and how
//! it is spread so that many breakers (or clients) do not act in step.
//! The breaker's open times use them today; a retry policy's delays are the
//! same two ideas.

mod backoff;
mod jitter;

pub(crate) use backoff::{saturating_mul, Backoff};
pub(crate) use jitter::{Jitter, SplitMix};
