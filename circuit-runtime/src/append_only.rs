//! A list that only grows, read without locks: what a running breaker
//! keeps its windows in, so a reconfiguration can switch windows under
//! callers that are still writing to the old one.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// Segment `k` holds `2^k` items, so 48 segments hold more than any
/// program pushes.
const SEGMENTS: usize = 48;

/// Items are never removed or moved, so a reference to one lives as long
/// as the list. Pushes must be serialized by the caller (every push here
/// happens under a breaker's transition lock); reads need no lock.
pub(crate) struct AppendOnly<T> {
    segments: [OnceLock<Box<[OnceLock<T>]>>; SEGMENTS],
    /// The number of items pushed; written only by the serialized pushers.
    len: AtomicUsize,
}

impl<T> Default for AppendOnly<T> {
    fn default() -> Self {
        Self {
            segments: std::array::from_fn(|_| OnceLock::new()),
            len: AtomicUsize::new(0),
        }
    }
}

/// The segment and the offset in it of item `index`.
fn locate(index: usize) -> (usize, usize) {
    let position = index + 1;
    let segment = (usize::BITS - 1 - position.leading_zeros()) as usize;
    (segment, position - (1 << segment))
}

impl<T> AppendOnly<T> {
    /// The item at `index`, if it has been pushed.
    #[inline]
    pub(crate) fn get(&self, index: usize) -> Option<&T> {
        let (segment, offset) = locate(index);
        self.segments.get(segment)?.get()?.get(offset)?.get()
    }

    /// Appends `item` and returns its index. Callers serialize pushes.
    pub(crate) fn push(&self, item: T) -> usize {
        let index = self.len.load(Ordering::Relaxed);
        let (segment, offset) = locate(index);
        let slots = self.segments[segment]
            .get_or_init(|| (0..1_usize << segment).map(|_| OnceLock::new()).collect());
        assert!(
            slots[offset].set(item).is_ok(),
            "AppendOnly::push is serialized by its callers"
        );
        self.len.store(index + 1, Ordering::Relaxed);
        index
    }

    /// The items pushed so far, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        (0..).map_while(|index| self.get(index))
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for AppendOnly<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_keep_their_index_across_segments() {
        let list = AppendOnly::default();
        for item in 0..100 {
            assert_eq!(list.push(item), item);
        }
        for item in 0..100 {
            assert_eq!(list.get(item), Some(&item));
        }
        assert_eq!(list.get(100), None);
        assert_eq!(list.iter().count(), 100);
    }

    #[test]
    fn segments_double() {
        assert_eq!(locate(0), (0, 0));
        assert_eq!(locate(1), (1, 0));
        assert_eq!(locate(2), (1, 1));
        assert_eq!(locate(3), (2, 0));
        assert_eq!(locate(6), (2, 3));
        assert_eq!(locate(7), (3, 0));
    }
}
