//! The one place the crate takes its synchronization primitives from, so the
//! state machine can later be model-checked by swapping these for loom's
//! types under `--cfg loom` without touching any other module.

pub(crate) use std::sync::atomic::{AtomicU64, Ordering};
pub(crate) use std::sync::{Arc, Mutex, MutexGuard, RwLock};

/// Locks `mutex`, ignoring poisoning: nothing in this crate panics while
/// holding a lock (user code never runs under one), so a poisoned lock can
/// only come from an abort-in-progress and its data is still consistent.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
