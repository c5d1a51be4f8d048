//! The integrations every event and timed call passes through: logs
//! (feature `tracing`) and the metrics facade (feature `metrics`). With a
//! feature off its functions are empty and inline to nothing.

#[cfg(feature = "metrics")]
pub(crate) mod facade;
#[cfg(feature = "tracing")]
mod logs;

use std::time::Duration;

use crate::{CircuitBreaker, Event};

/// Hands `event` of `breaker` to every integration that is on.
#[inline]
pub(crate) fn record(breaker: &CircuitBreaker, event: &Event) {
    #[cfg(feature = "tracing")]
    logs::record(event);
    #[cfg(feature = "metrics")]
    facade::record(breaker, event);
    let _ = (breaker, event);
}

/// `breaker` is no longer its registry's for its name: integrations stop
/// reporting what it last reported under that name.
#[inline]
pub(crate) fn retired(breaker: &CircuitBreaker) {
    #[cfg(feature = "metrics")]
    facade::retired(breaker);
    let _ = breaker;
}

/// Whether an integration wants the events of calls (rejections,
/// fallbacks, slow calls), which are built only when someone does.
#[inline]
pub(crate) fn wants_call_events() -> bool {
    #[cfg(feature = "tracing")]
    {
        logs::wants_call_events()
    }
    #[cfg(not(feature = "tracing"))]
    {
        false
    }
}

/// Hands the duration of a timed call of `breaker` to every integration
/// that is on.
#[inline]
pub(crate) fn record_duration(breaker: &CircuitBreaker, duration: Duration) {
    #[cfg(feature = "metrics")]
    facade::record_duration(breaker, duration);
    let _ = (breaker, duration);
}
