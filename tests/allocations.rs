//! The hot paths allocate nothing: a counting global allocator watches
//! every call after a warm-up call (which may set up thread-locals).
//!
//! Counts are per thread, so the tests of this binary can run in parallel
//! without seeing each other's allocations.

// The one `unsafe` in the workspace: a global allocator must implement the
// `unsafe` trait `GlobalAlloc`. Each method only forwards to `System`.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;
use std::time::Duration;

use circuit_runtime::{CallError, CircuitBreaker, Config, State};

/// The system allocator, counting the allocations of the current thread.
struct Counting;

thread_local! {
    // `const` and free of `Drop`: touching it never allocates, so the
    // allocator cannot recurse into itself.
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count_one() {
    // A thread tearing down its thread-locals still allocates; skip it.
    let _ = ALLOCATIONS.try_with(|count| count.set(count.get() + 1));
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged; counting touches only a `Cell` of the calling thread.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_one();
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_one();
        System.alloc_zeroed(layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_one();
        System.realloc(ptr, layout, new_size)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const CALLS: u64 = 1_000;

/// How many allocations this thread makes while running `call` [`CALLS`]
/// times, after one uncounted warm-up run.
fn allocations_per_calls(mut call: impl FnMut()) -> u64 {
    call();
    let before = ALLOCATIONS.with(Cell::get);
    for _ in 0..CALLS {
        call();
    }
    ALLOCATIONS.with(Cell::get) - before
}

fn breaker(config: Config) -> CircuitBreaker {
    CircuitBreaker::new("allocations", config)
}

#[test]
fn the_counter_sees_allocations_inside_a_call() {
    // Proves the zero counts below can fail: a call that allocates once is
    // counted once per call.
    let breaker = breaker(Config::default());
    let allocations = allocations_per_calls(|| {
        let result = breaker.call(|| Ok::<_, ()>(black_box(Box::new(7_u64))));
        black_box(result).expect("a closed breaker runs the call");
    });
    assert_eq!(allocations, CALLS);
}

#[test]
fn closed_success_call_allocates_nothing() {
    let breaker = breaker(Config::default());
    let allocations = allocations_per_calls(|| {
        let result = breaker.call(|| Ok::<_, ()>(black_box(42_u64)));
        black_box(result).expect("a closed breaker runs the call");
    });
    assert_eq!(allocations, 0, "allocations in {CALLS} closed calls");
    assert_eq!(breaker.state(), State::Closed);
}

#[test]
fn permit_success_allocates_nothing() {
    let breaker = breaker(Config::default());
    let allocations = allocations_per_calls(|| {
        breaker
            .try_acquire()
            .expect("a closed breaker admits the call")
            .record_success();
    });
    assert_eq!(allocations, 0, "allocations in {CALLS} two-step calls");
}

#[test]
fn rejected_call_allocates_nothing() {
    let config = Config::builder()
        .failure_threshold(1)
        .recovery_timeout(Duration::from_secs(3600))
        .build()
        .expect("a valid config");
    let breaker = breaker(config);
    let _ = breaker.call(|| Err::<u64, _>(()));
    assert_eq!(breaker.state(), State::Open);
    let allocations = allocations_per_calls(|| {
        let result = breaker.call(|| Ok::<_, ()>(black_box(42_u64)));
        assert!(matches!(black_box(result), Err(CallError::Rejected(_))));
    });
    assert_eq!(allocations, 0, "allocations in {CALLS} rejected calls");
}

#[test]
fn rate_window_call_allocates_nothing() {
    let config = Config::builder()
        .failure_rate_threshold(0.5)
        .window_size(100)
        .build()
        .expect("a valid config");
    let breaker = breaker(config);
    let allocations = allocations_per_calls(|| {
        let result = breaker.call(|| Ok::<_, ()>(black_box(42_u64)));
        black_box(result).expect("a closed breaker runs the call");
    });
    assert_eq!(allocations, 0, "allocations in {CALLS} windowed calls");
    assert_eq!(breaker.metrics().failure_rate, Some(0.0));
}

#[test]
fn async_closed_call_allocates_nothing() {
    let breaker = breaker(Config::default());
    let allocations = allocations_per_calls(|| {
        let call = breaker.call_async(async { Ok::<_, ()>(black_box(42_u64)) });
        let result = futures::executor::block_on(call);
        black_box(result).expect("a closed breaker runs the call");
    });
    assert_eq!(allocations, 0, "allocations in {CALLS} async closed calls");
}

#[test]
fn calls_allocate_nothing_with_a_prometheus_exporter_installed_and_fed() {
    // Every feature is on in this package; here the `metrics` feature also
    // has an exporter to feed, and the registry publishes into it between
    // rounds of calls.
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::with_local_recorder(&recorder, || {
        let registry = circuit_runtime::Registry::new();
        let closed = registry.get_or_create("allocations.exported", Config::default());
        let open = registry.get_or_create("allocations.exported.open", Config::default());
        open.force_open();
        registry.publish_metrics();
        let allocations = allocations_per_calls(|| {
            let result = closed.call(|| Ok::<_, ()>(black_box(42_u64)));
            black_box(result).expect("a closed breaker runs the call");
            let result = open.call(|| Ok::<_, ()>(black_box(42_u64)));
            assert!(matches!(black_box(result), Err(CallError::Rejected(_))));
        });
        assert_eq!(
            allocations, 0,
            "allocations in {CALLS} closed and rejected calls"
        );
        registry.publish_metrics();
    });
    assert!(handle.render().contains(
        r#"circuit_breaker_calls_total{name="allocations.exported",result="success"} 1001"#
    ));
}

#[test]
fn timed_calls_allocate_nothing_beyond_the_exporters_own_histogram_storage() {
    // A slow-call rule makes the breaker time its calls, and with the
    // `metrics` feature each duration goes into the exporter's
    // `circuit_breaker_call_duration_seconds` histogram as the call ends.
    // The Prometheus exporter stores a histogram's samples in blocks of 64
    // until a scrape drains them, so recording a sample allocates a block
    // now and then whoever records it: the breaker must add nothing to
    // what recording the same samples directly costs.
    const TIMED_CALLS: u64 = 10_000;
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::with_local_recorder(&recorder, || {
        let direct = metrics::histogram!("direct_samples_seconds");
        direct.record(0.0);
        let before = ALLOCATIONS.with(Cell::get);
        for _ in 0..TIMED_CALLS {
            direct.record(black_box(0.0));
        }
        let storage = ALLOCATIONS.with(Cell::get) - before;
        assert!(storage > 0, "the exporter's storage allocates: {storage}");

        let config = Config::builder()
            .slow_call_duration(Duration::from_secs(1))
            .build()
            .expect("a valid config");
        let breaker = breaker(config);
        let call = || {
            let result = breaker.call(|| Ok::<_, ()>(black_box(42_u64)));
            black_box(result).expect("a closed breaker runs the call");
        };
        call();
        let before = ALLOCATIONS.with(Cell::get);
        for _ in 0..TIMED_CALLS {
            call();
        }
        let allocations = ALLOCATIONS.with(Cell::get) - before;
        assert_eq!(
            allocations, storage,
            "{TIMED_CALLS} timed calls allocate what {TIMED_CALLS} samples recorded directly do"
        );
    });
    assert!(handle.render().contains(&format!(
        r#"circuit_breaker_call_duration_seconds_count{{name="allocations"}} {}"#,
        TIMED_CALLS + 1
    )));
}

#[test]
fn an_observed_rejection_allocates_nothing() {
    let breaker = breaker(Config::default());
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let count = std::sync::Arc::clone(&seen);
    breaker.on_event(move |event| {
        if let circuit_runtime::Event::Rejection(_) = event {
            count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    });
    breaker.force_open();
    let allocations = allocations_per_calls(|| {
        let result = breaker.call(|| Ok::<_, ()>(black_box(42_u64)));
        assert!(matches!(black_box(result), Err(CallError::Rejected(_))));
    });
    assert_eq!(allocations, 0, "allocations in {CALLS} observed rejections");
    assert_eq!(seen.load(std::sync::atomic::Ordering::Relaxed), CALLS + 1);
}

#[test]
fn a_rejection_allocates_nothing_with_a_transition_hook_and_no_subscriber() {
    let config = Config::builder()
        .failure_threshold(1)
        .recovery_timeout(Duration::from_secs(3600))
        .build()
        .expect("a valid config");
    let breaker = breaker(config);
    breaker.on_transition(|_| {});
    let _ = breaker.call(|| Err::<u64, _>(()));
    let allocations = allocations_per_calls(|| {
        let result = breaker.call(|| Ok::<_, ()>(black_box(42_u64)));
        assert!(matches!(black_box(result), Err(CallError::Rejected(_))));
    });
    assert_eq!(
        allocations, 0,
        "allocations in {CALLS} rejections with a retry_after"
    );
}

#[circuit_runtime::circuit_breaker(name = "allocations.keyed", key = host)]
fn fetch_from(host: &str) -> Result<u32, circuit_runtime::CircuitOpenError> {
    Ok(black_box(host.len()).try_into().unwrap_or_default())
}

#[test]
fn a_keyed_call_with_a_key_seen_before_allocates_nothing() {
    let hosts = ["a.example:443", "b.example:443", "c.example:443"];
    for host in hosts {
        fetch_from(host).unwrap();
    }
    let mut next = 0;
    let allocations = allocations_per_calls(|| {
        next = (next + 1) % hosts.len();
        black_box(fetch_from(black_box(hosts[next])).unwrap());
    });
    assert_eq!(allocations, 0);

    let keyed = circuit_runtime::registry().keyed("allocations.keyed_handle", Config::default());
    let allocations = allocations_per_calls(|| {
        black_box(keyed.get(&black_box(42_u32)));
    });
    assert_eq!(allocations, 0);
}
