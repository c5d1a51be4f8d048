//! The packed atomic words the state machine synchronizes through: the one
//! place that knows their bit layouts.

use super::state::State;
use crate::sync::{AtomicU64, Ordering};
use crate::tagged;

/// A value of the state word: where the breaker stands and in which
/// period, `generation << STATE_BITS | state`. The generation has 61 bits:
/// at one transition per nanosecond it would take 73 years to wrap, so
/// within a process two periods never share a generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct StateWord(u64);

pub(super) const STATE_BITS: u32 = 3;
const STATE_MASK: u64 = (1 << STATE_BITS) - 1;
pub(super) const MAX_GENERATION: u64 = u64::MAX >> STATE_BITS;

impl StateWord {
    /// The period `generation` (wrapped to its 61 bits) in `state`.
    pub(super) fn new(generation: u64, state: State) -> StateWord {
        StateWord((generation & MAX_GENERATION) << STATE_BITS | state.code())
    }

    pub(super) fn state(self) -> State {
        State::from_code(self.0 & STATE_MASK)
    }

    pub(super) fn generation(self) -> u64 {
        self.0 >> STATE_BITS
    }

    /// The tag of this period's counters: see [`tag_of`].
    pub(super) fn tag(self) -> u32 {
        tag_of(self.generation())
    }

    /// Whether the breaker is closed and `closed_path_work`, what its
    /// closed calls need beyond a count (see
    /// [`Tuning::closed_path_work`](super::tuning::Tuning::closed_path_work)),
    /// is nothing: the closed fast path's one test. Bits, not `state()`,
    /// whose decoding into a `State` cost the hot path a lookup; and as
    /// Closed is code 0, both conditions fold into one OR and one branch,
    /// so a plain breaker pays only the load of one read-mostly word for
    /// its options.
    #[inline]
    pub(super) fn is_plain_closed(self, closed_path_work: u64) -> bool {
        ((self.0 & STATE_MASK) ^ State::Closed.code()) | closed_path_work == 0
    }

    /// Whether the breaker is closed and `closed_path_work` asks for a
    /// window to record in and nothing else: the closed path of a breaker
    /// with rate rules, which needs no more than the fast path's admission.
    #[inline]
    pub(super) fn is_windowed_closed(self, closed_path_work: u64) -> bool {
        self.0 & STATE_MASK == State::Closed.code() && closed_path_work == CLOSED_PATH_WINDOW
    }

    /// The value of the period counter `counter` (a [`tagged`] word) if it
    /// belongs to this period and this period is in `state`; 0 if not: a
    /// counter the current period has not touched counts nothing.
    pub(super) fn period_value(self, counter: u64, state: State) -> u32 {
        match tagged::unpack(counter) {
            (tag, value) if self.state() == state && tag == self.tag() => value,
            _ => 0,
        }
    }
}

/// The state word itself, which holds only [`StateWord`]s.
#[derive(Debug)]
pub(super) struct AtomicStateWord(AtomicU64);

impl AtomicStateWord {
    pub(super) fn new(word: StateWord) -> Self {
        Self(AtomicU64::new(word.0))
    }

    #[inline]
    pub(super) fn load(&self, order: Ordering) -> StateWord {
        StateWord(self.0.load(order))
    }

    pub(super) fn store(&self, word: StateWord, order: Ordering) {
        self.0.store(word.0, order);
    }
}

/// The bits of [`Tuning::closed_path_work`](super::tuning::Tuning::closed_path_work):
/// a concurrency slot to take, a start time to read, a window to record in.
pub(super) const CLOSED_PATH_SLOT: u64 = 1;
pub(super) const CLOSED_PATH_TIMING: u64 = 1 << 1;
pub(super) const CLOSED_PATH_WINDOW: u64 = 1 << 2;

pub(super) fn next_generation(generation: u64) -> u64 {
    (generation + 1) & MAX_GENERATION
}

/// The tag that period counters carry: the generation's low 32 bits.
///
/// A tag is only ever compared for equality, and only by a caller that has
/// just seen its own generation in the state word: every transition
/// rewrites the counter words with the new period's tag before it
/// publishes the new state, so a counter word whose tag differs belongs to
/// a later period, and one whose tag matches is this period's, unless a
/// thread stalls between those two reads for 2^32 transitions.
#[allow(clippy::cast_possible_truncation)] // the truncation is the tag
pub(super) fn tag_of(generation: u64) -> u32 {
    generation as u32
}

/// The value of the trial word (a [`tagged`] word):
/// `successes << 16 | in_flight`.
pub(super) fn trial_value(successes: u32, in_flight: u32) -> u32 {
    successes << 16 | in_flight
}

/// The most either field of the trial word holds.
pub(super) const MAX_TRIAL_FIELD: u32 = 0xFFFF;

/// The successes and the calls in flight of a trial word's value.
pub(super) fn trial_fields(value: u32) -> (u32, u32) {
    (value >> 16, value & MAX_TRIAL_FIELD)
}
