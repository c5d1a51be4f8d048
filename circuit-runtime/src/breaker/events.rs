//! A breaker's events: its hooks, and the one place every event leaves
//! through, built only when someone is looking.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::CircuitBreaker;
use crate::events::{Event, FallbackReason, FallbackRun, Transition};
use crate::metrics::Counter;

impl CircuitBreaker {
    /// Adds a hook that runs after every [`Event`] of this breaker: state
    /// changes, rejected calls, fallbacks, slow calls, reconfigurations.
    /// It runs with no lock of the breaker held, so it may read or call the
    /// breaker; a panicking hook is contained and does not affect the
    /// breaker, the call that caused the event, or the hooks after it.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use circuit_runtime::{CircuitBreaker, Event};
    ///
    /// let breaker = CircuitBreaker::new("feed", Default::default());
    /// let kinds = Arc::new(Mutex::new(Vec::new()));
    /// let sink = Arc::clone(&kinds);
    /// breaker.on_event(move |event: &Event| sink.lock().unwrap().push(event.kind()));
    /// breaker.force_open();
    /// let _ = breaker.try_acquire();
    /// assert_eq!(*kinds.lock().unwrap(), ["transition", "rejection"]);
    /// ```
    pub fn on_event(&self, hook: impl Fn(&Event) + Send + Sync + 'static) {
        self.hooks.push(Arc::new(hook));
        self.mark_observed();
    }

    /// Notes that a hook of every event now observes this breaker: its
    /// own, or one its registry just added.
    pub(crate) fn mark_observed(&self) {
        self.observed.store(true, Ordering::Release);
    }

    /// Adds a hook that runs after every state change of this breaker: the
    /// [`Event::Transition`]s of [`on_event`](Self::on_event).
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    /// use circuit_runtime::CircuitBreaker;
    ///
    /// let changes = Arc::new(AtomicUsize::new(0));
    /// let breaker = CircuitBreaker::new("feed", Default::default());
    /// let counter = Arc::clone(&changes);
    /// breaker.on_transition(move |_| { counter.fetch_add(1, Ordering::Relaxed); });
    /// breaker.force_open();
    /// breaker.reset();
    /// assert_eq!(changes.load(Ordering::Relaxed), 2);
    /// ```
    pub fn on_transition(&self, hook: impl Fn(&Transition) + Send + Sync + 'static) {
        // Not `on_event`: a transition hook must not make every rejection
        // build an event only to be filtered out.
        self.hooks.push(Arc::new(transitions_only(hook)));
    }

    /// Records that a fallback ran in place of a call's own result, for
    /// code that runs its own fallbacks (the attribute's `fallback` records
    /// its runs itself): counted in [`metrics`](Self::metrics) and
    /// reported as an [`Event::Fallback`].
    ///
    /// ```
    /// use circuit_runtime::{CallError, CircuitBreaker, FallbackReason};
    ///
    /// let breaker = CircuitBreaker::new("quotes", Default::default());
    /// breaker.force_open();
    /// let price = match breaker.call(|| Ok::<_, ()>(101)) {
    ///     Ok(price) => price,
    ///     Err(CallError::Rejected(_)) => {
    ///         breaker.record_fallback(FallbackReason::Rejected);
    ///         100 // the cached price
    ///     }
    ///     Err(CallError::Failed(())) => {
    ///         breaker.record_fallback(FallbackReason::Failed);
    ///         100
    ///     }
    /// };
    /// assert_eq!(price, 100);
    /// assert_eq!(breaker.metrics().fallbacks_after_rejection, 1);
    /// ```
    pub fn record_fallback(&self, reason: FallbackReason) {
        self.counters.add(match reason {
            FallbackReason::Rejected => Counter::FallbackAfterRejection,
            FallbackReason::Failed => Counter::FallbackAfterFailure,
        });
        if self.is_observed() {
            self.emit(&Event::Fallback(FallbackRun {
                name: self.static_name(),
                reason,
            }));
        }
    }

    /// Whether anyone would see an event that is not a transition: an
    /// `on_event` hook of the breaker or of its registry, or with feature
    /// `tracing` a subscriber that wants the breaker's debug events. One
    /// load when nobody looks (and, with `tracing`, its cached level check).
    /// A breaker the registry retired before a registry hook was added is
    /// not marked: that hook sees its transitions only.
    #[inline]
    pub(super) fn is_observed(&self) -> bool {
        self.observed.load(Ordering::Acquire) || crate::telemetry::wants_call_events()
    }

    /// Hands `event` to the integrations, then to the registry's hooks,
    /// then to the breaker's own. No lock of the breaker is held.
    #[cold]
    #[inline(never)]
    pub(crate) fn emit(&self, event: &Event) {
        crate::telemetry::record(self, event);
        if let Some(shared) = &self.shared_hooks {
            shared.run(event);
        }
        self.hooks.run(event);
    }
}

/// `hook`, called for transitions only.
pub(crate) fn transitions_only(
    hook: impl Fn(&Transition) + Send + Sync + 'static,
) -> impl Fn(&Event) + Send + Sync + 'static {
    move |event| {
        if let Event::Transition(transition) = event {
            hook(transition);
        }
    }
}
