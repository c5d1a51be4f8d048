//! Words tagged with the state period they belong to: the tag (the low 32
//! bits of the period's generation) in the high half, a value in the low
//! half. The breaker's consecutive failures and trial slots, and the count
//! window's position, totals and slots, are all such words; this is the one
//! place that knows the layout, and [`update`] the one way to change a
//! counter of a given period.

use crate::sync::{AtomicU64, Ordering};

/// `tag << 32 | value`.
pub(crate) fn pack(tag: u32, value: u32) -> u64 {
    u64::from(tag) << 32 | u64::from(value)
}

/// The tag and the value of a packed word.
#[allow(clippy::cast_possible_truncation)] // the two halves of the word
pub(crate) fn unpack(word: u64) -> (u32, u32) {
    ((word >> 32) as u32, word as u32)
}

/// Replaces the value of `word` with `change(value)`, atomically, if the
/// word is tagged `tag` and `change` gives a value. `Ok` with the value it
/// replaced, or `Err` with the word as found: tagged with another period,
/// or holding a value `change` declined.
#[inline]
pub(crate) fn update(
    word: &AtomicU64,
    tag: u32,
    mut change: impl FnMut(u32) -> Option<u32>,
) -> Result<u32, u64> {
    word.fetch_update(
        Ordering::AcqRel,
        Ordering::Acquire,
        |current| match unpack(current) {
            (current_tag, value) if current_tag == tag => change(value).map(|new| pack(tag, new)),
            _ => None,
        },
    )
    .map(|previous| unpack(previous).1)
}
