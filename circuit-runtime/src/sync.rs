//! The primitives the state machine synchronizes through. Under
//! `--cfg loom` they are loom's, so the loom models in `tests/loom.rs`
//! explore every interleaving of the breaker's atomics and its transition
//! lock. Everything outside the state machine (the registry, hook lists,
//! shared names) uses `std` directly: loom objects cannot live in statics.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicPtr, AtomicU64, Ordering};
#[cfg(loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{fence, AtomicPtr, AtomicU64, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};

/// Locks `mutex`, ignoring poisoning: nothing in this crate panics while
/// holding a lock (user code never runs under one), so a poisoned lock can
/// only come from an abort-in-progress and its data is still consistent.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// [`lock`] for the `std` mutexes outside the state machine (registry,
/// thread slots, interned names), which no user code runs under either.
pub(crate) fn lock_std<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Reads a `std` read-write lock, ignoring poisoning as [`lock`] does.
pub(crate) fn read<T>(lock: &std::sync::RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Writes a `std` read-write lock, ignoring poisoning as [`lock`] does.
pub(crate) fn write<T>(lock: &std::sync::RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
