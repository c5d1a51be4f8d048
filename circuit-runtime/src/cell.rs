//! A breaker reference a `static` can hold and replace: how a call site
//! caches its breaker without a lock and still follows the registry when
//! it replaces the breaker behind a name.

use std::ptr;
use std::sync::Arc;

use crate::breaker::CircuitBreaker;
use crate::sync::{AtomicPtr, Ordering};

/// Null, or a breaker that lives for the rest of the program.
pub(crate) struct BreakerCell(AtomicPtr<CircuitBreaker>);

/// Keeps `breaker` alive for the rest of the program, so a call site can
/// hold it without counting references. A call site keeps at most one
/// breaker per replacement of its name (removals and clock changes, rare
/// by nature), so the memory kept is bounded by how often a program does
/// that, not by how often it calls.
pub(crate) fn keep_forever(breaker: Arc<CircuitBreaker>) -> &'static CircuitBreaker {
    Box::leak(Box::new(breaker))
}

impl BreakerCell {
    /// An empty cell, for a `static`.
    #[cfg(not(loom))]
    pub(crate) const fn new() -> Self {
        Self(AtomicPtr::new(ptr::null_mut()))
    }

    /// An empty cell (loom's atomics cannot be built in a `const`).
    #[cfg(loom)]
    pub(crate) fn new() -> Self {
        Self(AtomicPtr::new(ptr::null_mut()))
    }

    /// The breaker last set, if any.
    #[inline]
    #[allow(unsafe_code)]
    pub(crate) fn get(&self) -> Option<&'static CircuitBreaker> {
        let breaker = self.0.load(Ordering::Acquire);
        // SAFETY: the pointer is null or was stored by `set`, the only
        // writer, from a `&'static CircuitBreaker`: a shared reference
        // valid for the rest of the program, so making one again from it
        // is sound whenever it is read. The breaker is `Sync`, so sharing
        // it between threads is too. The load is `Acquire` and the store
        // `Release`, so everything written to the breaker before it was
        // set is visible here (the `loom_model` below races a set against
        // a read).
        unsafe { breaker.as_ref() }
    }

    /// Points the cell at `breaker`.
    pub(crate) fn set(&self, breaker: &'static CircuitBreaker) {
        self.0
            .store(ptr::from_ref(breaker).cast_mut(), Ordering::Release);
    }

    /// Empties the cell if it still points at `breaker`.
    pub(crate) fn clear_if(&self, breaker: &CircuitBreaker) {
        let _ = self.0.compare_exchange(
            ptr::from_ref(breaker).cast_mut(),
            ptr::null_mut(),
            Ordering::AcqRel,
            Ordering::Relaxed,
        );
    }
}

impl std::fmt::Debug for BreakerCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("BreakerCell").field(&self.get()).finish()
    }
}

/// Run with `RUSTFLAGS="--cfg loom" cargo test -p circuit-runtime --lib
/// --release -- loom_model`.
#[cfg(all(test, loom))]
mod loom_model {
    use super::*;
    use crate::Config;

    /// A breaker built on one thread and set in a cell while another
    /// thread reads the cell: the reader sees no breaker or the whole
    /// breaker, never one whose initialization it cannot see.
    #[test]
    fn a_reader_sees_a_set_breaker_whole() {
        loom::model(|| {
            let cell: &'static BreakerCell = Box::leak(Box::new(BreakerCell::new()));
            let first = keep_forever(Arc::new(CircuitBreaker::new("first", Config::default())));
            cell.set(first);
            let replacer = loom::thread::spawn(move || {
                let second = CircuitBreaker::new("second", Config::default());
                second.record_failure();
                cell.set(keep_forever(Arc::new(second)));
            });
            let seen = cell.get().expect("set before the race");
            match seen.name() {
                "first" => assert_eq!(seen.metrics().failed_calls, 0),
                _ => assert_eq!(seen.metrics().failed_calls, 1),
            }
            replacer.join().unwrap();
            assert_eq!(cell.get().map(CircuitBreaker::name), Some("second"));
        });
    }
}
