//! Events as `tracing` events, under the target `circuit_runtime`: a
//! breaker opening is a warning, any other state change or a
//! reconfiguration is information, and what happens to single calls
//! (rejections, fallbacks, slow calls, retries) is debug.

use circuit_spec::duration::{format, format_millis_up};
use tracing::{debug, enabled, info, warn, Level};

use crate::{Event, State};

/// Whether a subscriber wants the debug events of single calls. A cached
/// check of the callsite's interest and the global level: a few loads,
/// and no event is built when no one listens.
#[inline]
pub(super) fn wants_call_events() -> bool {
    enabled!(target: "circuit_runtime", Level::DEBUG)
}

pub(super) fn record(event: &Event) {
    let breaker = event.name();
    match event {
        Event::Transition(transition) => {
            let (from, to, cause) = (
                transition.from.as_str(),
                transition.to.as_str(),
                transition.cause.as_str(),
            );
            if transition.to == State::Open {
                warn!(target: "circuit_runtime", breaker, from, to, cause, "circuit breaker opened");
            } else {
                info!(target: "circuit_runtime", breaker, from, to, cause, "circuit breaker changed state");
            }
        }
        // The events of single calls: nothing formatted unless a
        // subscriber wants them (a transition hook alone makes them be
        // emitted, not logged).
        Event::Rejection(_) | Event::Fallback(_) | Event::SlowCall(_) | Event::Retry(_)
            if !wants_call_events() => {}
        Event::Rejection(rejection) => {
            let state = rejection.state().as_str();
            // Recorded only when known: an open breaker's time left.
            let retry_after = rejection.retry_after().map(format_millis_up);
            let retry_after = retry_after.as_deref();
            if rejection.is_concurrency_limit() {
                debug!(target: "circuit_runtime", breaker, state, "call rejected: at its limit of concurrent calls");
            } else {
                debug!(target: "circuit_runtime", breaker, state, retry_after, "call rejected");
            }
        }
        Event::Fallback(fallback) => {
            let reason = fallback.reason.as_str();
            debug!(target: "circuit_runtime", breaker, reason, "fallback ran");
        }
        Event::SlowCall(slow) => {
            let duration = format_millis_up(slow.duration);
            let threshold = format(slow.threshold);
            debug!(target: "circuit_runtime", breaker, duration, threshold, "slow call");
        }
        Event::Retry(retry) => {
            let (attempt, delay) = (retry.attempt, format_millis_up(retry.delay));
            let category = retry.category.map(crate::retry::ErrorCategory::as_str);
            debug!(target: "circuit_runtime", breaker, attempt, delay, category, "retrying call");
        }
        Event::Reconfiguration(change) => {
            let changed = change.changed.join(",");
            info!(target: "circuit_runtime", breaker, changed, "circuit breaker reconfigured");
        }
        Event::Degraded(change) => {
            let reason = change.reason.as_deref();
            if change.degraded {
                warn!(target: "circuit_runtime", breaker, reason, "circuit breaker decides alone: its shared state cannot be reached");
            } else {
                info!(target: "circuit_runtime", breaker, "circuit breaker shares its state again");
            }
        }
        Event::KeyOverflow(overflow) => {
            let (key, max_keys) = (overflow.key.as_str(), overflow.max_keys);
            warn!(target: "circuit_runtime", breaker, key, max_keys, "keyed breaker reached its bound on keys");
        }
    }
}
