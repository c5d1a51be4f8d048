//! A flood of distinct keys, as an attacker choosing them would send, does
//! not grow memory past the bound on keys: a global allocator keeps the
//! live bytes of the whole process, and this binary holds one test so
//! nothing else allocates meanwhile.

// A global allocator must implement the `unsafe` trait `GlobalAlloc`. Each
// method only forwards to `System`.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use circuit_runtime::{Config, KeyLimits, Registry};

/// The system allocator, keeping the bytes allocated and not yet freed.
struct Live;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

#[allow(clippy::cast_possible_wrap)] // allocations are far below isize::MAX
fn size_of_layout(layout: Layout) -> isize {
    layout.size() as isize
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged; counting touches only an atomic.
unsafe impl GlobalAlloc for Live {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(size_of_layout(layout), Ordering::Relaxed);
        System.alloc(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(size_of_layout(layout), Ordering::Relaxed);
        System.dealloc(ptr, layout);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        #[allow(clippy::cast_possible_wrap)]
        let grown = new_size as isize - size_of_layout(layout);
        LIVE_BYTES.fetch_add(grown, Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Live = Live;

const MAX_KEYS: usize = 1_000;
const FLOOD: u64 = 1_000_000;

#[test]
fn a_million_distinct_keys_stay_within_the_bound() {
    let registry = Registry::new();
    let hosts = registry.keyed_with(
        "flood",
        Config::default(),
        KeyLimits::new().max_keys(MAX_KEYS),
    );
    let before = LIVE_BYTES.load(Ordering::Relaxed);
    for key in 0..MAX_KEYS as u64 {
        drop(hosts.get(&key));
    }
    // The overflow breaker, made once.
    drop(hosts.get("first past the bound"));
    let at_the_bound = LIVE_BYTES.load(Ordering::Relaxed);

    for key in MAX_KEYS as u64..FLOOD {
        drop(hosts.get(&key));
    }
    let after_the_flood = LIVE_BYTES.load(Ordering::Relaxed);

    let per_key = (at_the_bound - before) / isize::try_from(MAX_KEYS).unwrap();
    eprintln!("{per_key} bytes per key's breaker; {FLOOD} keys fed");
    assert_eq!(hosts.len(), MAX_KEYS);
    assert_eq!(
        registry.names().len(),
        MAX_KEYS + 1,
        "the keys and the overflow"
    );
    assert!(
        after_the_flood - at_the_bound < 4096,
        "{} bytes more after {} keys beyond the bound",
        after_the_flood - at_the_bound,
        FLOOD - MAX_KEYS as u64,
    );
}
