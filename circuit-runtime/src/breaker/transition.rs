//! Transitions: moving the breaker to a new state period, under its mutex,
//! and telling its observers afterwards (always: transitions are rare, and
//! metrics count them whether or not anyone hooked them).

use super::words::{next_generation, tag_of, StateWord};
use super::{CircuitBreaker, State};
use crate::clock::saturating_nanos;
use crate::events::{Event, Transition, TransitionCause};
use crate::sync::{lock, Ordering};
use crate::tagged;

impl CircuitBreaker {
    /// Moves the breaker to `to`. With `expected`, only if the state word is
    /// still exactly `expected` (the period the caller judged); without, a
    /// manual command that applies whatever the state. Returns whether this
    /// call made the change.
    ///
    /// The time is read here, under the lock: a time read before would date
    /// the new period in the past, by however long the caller took to get
    /// here, and a half-open period could then time out the moment it
    /// began.
    pub(super) fn transition(
        &self,
        expected: Option<StateWord>,
        to: State,
        cause: TransitionCause,
    ) -> bool {
        self.transition_for(expected, to, cause, None)
    }

    /// [`transition`](Self::transition), with the open time given rather
    /// than taken from the backoff when `open_for` is set: another
    /// replica's open period, which ends when it ends there.
    pub(super) fn transition_for(
        &self,
        expected: Option<StateWord>,
        to: State,
        cause: TransitionCause,
        open_for: Option<std::time::Duration>,
    ) -> bool {
        let mut recovery = lock(&self.recovery);
        let current = self.state.load(Ordering::Acquire);
        if expected.is_some_and(|expected| expected != current) {
            return false;
        }
        let now = self.timeline.now_nanos();
        let from = current.state();
        let generation = next_generation(current.generation());
        // The new period's counters, written before its state word is
        // published: whoever sees the new generation sees them too.
        let tag = tag_of(generation);
        self.reset_period_counters(tag);
        match to {
            State::Open => {
                let open_for = open_for.unwrap_or_else(|| {
                    if from == State::HalfOpen {
                        recovery.open_for.grow();
                    }
                    let base = recovery.open_for.current();
                    recovery.jitter.spread(base)
                });
                self.open_until.store(
                    now.saturating_add(saturating_nanos(open_for)),
                    Ordering::Release,
                );
                // Before the state word: whoever sees this period open sees
                // its trials held.
                if self.holds_trials_on_open() {
                    self.hold_trials(true);
                }
                self.times_opened.fetch_add(1, Ordering::Relaxed);
            }
            State::Closed => {
                recovery.open_for.reset();
                if let Some(window) = self.windows.current() {
                    window.begin_period(tag);
                }
                if from != State::Closed {
                    self.times_closed.fetch_add(1, Ordering::Relaxed);
                }
            }
            State::HalfOpen => {
                self.times_half_opened.fetch_add(1, Ordering::Relaxed);
            }
            State::ForcedOpen | State::Disabled => {}
        }
        if to != State::Open && to != State::HalfOpen {
            // No open period left to hold: the next one is held anew.
            self.hold_trials(false);
        }
        self.entered_at.store(now, Ordering::Release);
        self.state
            .store(StateWord::new(generation, to), Ordering::Release);
        drop(recovery);
        if from != to {
            self.announce(from, to, cause, now);
        }
        true
    }

    /// Swaps, not stores, for the reason the count window gives in its
    /// `begin_period`: ordered after every compare-and-swap before them in
    /// loom's model too.
    pub(super) fn reset_period_counters(&self, tag: u32) {
        self.closed_failures
            .swap(tagged::pack(tag, 0), Ordering::AcqRel);
        self.trials.swap(tagged::pack(tag, 0), Ordering::AcqRel);
    }

    fn announce(&self, from: State, to: State, cause: TransitionCause, now: u64) {
        self.emit(&Event::Transition(Transition {
            name: self.static_name(),
            from,
            to,
            at: self.timeline.instant(now),
            cause,
        }));
    }
}
