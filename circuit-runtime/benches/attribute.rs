//! What `#[circuit_breaker]` adds over calling the runtime directly: the
//! closed path through the attribute (on a free function, on a method named
//! after its type, and on a trait's default method called on the second of
//! two types) beside `breaker.call(...)` on a breaker of the same
//! configuration, and an unprotected call as the floor, all in one run so
//! their differences are comparable on a busy machine.
//!
//! Both should cost at most 2 ns more than the unprotected call, the direct
//! call no more than the attribute, and `#[retry]` whose first attempt
//! succeeds at most 2 ns more than the function alone.
//!
//! Run with `cargo bench -p circuit-runtime --bench attribute`.

use std::hint::black_box;
use std::sync::Arc;

use circuit_runtime::{circuit_breaker, registry, CallError, CircuitBreaker, Config};
use criterion::{criterion_group, criterion_main, Criterion};

/// Keeps a call's result alive the way a caller does, in memory, without
/// `black_box(value)`'s copy of it: that copy reads back with wide loads
/// what the call just wrote in narrower stores, and the stall it costs
/// depends on the result's layout, not on the code under measurement.
#[allow(clippy::inline_always, clippy::needless_pass_by_value)] // by value, in place: the point
#[inline(always)]
fn consume<T>(value: T) {
    black_box(&value);
}

#[derive(Debug)]
struct Unavailable;

impl From<circuit_runtime::CircuitOpenError> for Unavailable {
    fn from(_: circuit_runtime::CircuitOpenError) -> Self {
        Unavailable
    }
}

/// The work every variant does: `black_box` keeps the argument and the
/// result opaque, so the call cannot be folded away.
#[inline]
#[allow(clippy::unnecessary_wraps)] // the shape a protected function has
fn work(x: u64) -> Result<u64, Unavailable> {
    Ok(black_box(x).wrapping_add(1))
}

#[circuit_breaker(name = "bench.attribute")]
fn through_attribute(x: u64) -> Result<u64, Unavailable> {
    work(x)
}

/// A method without a `name`: its breaker is named after its type, and the
/// call site compares the type's name (by address) on every call.
struct Service;

impl Service {
    #[circuit_breaker]
    fn through_method(&self, x: u64) -> Result<u64, Unavailable> {
        work(x)
    }
}

/// A trait's default method, one call site for every implementing type:
/// `Primary` calls first and takes the fast path, `Replica`'s calls walk
/// past `Primary`'s breaker to their own.
trait Source {
    #[circuit_breaker]
    fn through_trait(&self, x: u64) -> Result<u64, Unavailable> {
        work(x)
    }
}

struct Primary;
struct Replica;

impl Source for Primary {}
impl Source for Replica {}

fn direct_breaker() -> Arc<CircuitBreaker> {
    // The same kind of breaker the attribute gets: the registry's, with the
    // default configuration.
    registry().get_or_create("bench.direct", Config::default())
}

fn closed_path(c: &mut Criterion) {
    let breaker = direct_breaker();
    // Register the attribute's breakers before measuring.
    through_attribute(0).expect("closed");
    Service.through_method(0).expect("closed");
    Primary.through_trait(0).expect("closed");
    Replica.through_trait(0).expect("closed");

    let mut group = c.benchmark_group("closed_path");
    group.bench_function("unprotected", |b| {
        b.iter(|| consume(work(black_box(7))));
    });
    group.bench_function("direct_call", |b| {
        // Folded into the function's own error type, as the attribute does,
        // so both variants hand `black_box` the same 16-byte result.
        b.iter(|| {
            let result: Result<u64, Unavailable> = breaker
                .call(|| work(black_box(7)))
                .map_err(CallError::into_inner);
            consume(result);
        });
    });
    group.bench_function("attribute", |b| {
        b.iter(|| consume(through_attribute(black_box(7))));
    });
    group.bench_function("method", |b| {
        b.iter(|| consume(Service.through_method(black_box(7))));
    });
    group.bench_function("trait_method_second_type", |b| {
        b.iter(|| consume(Replica.through_trait(black_box(7))));
    });
    group.finish();
}

#[circuit_runtime::retry(max_retries = 3)]
fn through_retry(x: u64) -> Result<u64, Unavailable> {
    work(x)
}

#[circuit_runtime::retry(max_retries = 3)]
#[circuit_breaker(name = "bench.retried")]
fn through_retry_and_breaker(x: u64) -> Result<u64, Unavailable> {
    work(x)
}

/// What `#[retry]` adds when the first attempt succeeds, the common case:
/// alone, over the unprotected call, and above `#[circuit_breaker]`, over
/// the breaker alone. What it may cost: at most 2 ns either way.
fn first_attempt(c: &mut Criterion) {
    through_retry(0).expect("succeeds");
    through_retry_and_breaker(0).expect("succeeds");
    through_attribute(0).expect("closed");

    let mut group = c.benchmark_group("retry_first_attempt");
    group.bench_function("unprotected", |b| {
        b.iter(|| consume(work(black_box(7))));
    });
    group.bench_function("retry", |b| {
        b.iter(|| consume(through_retry(black_box(7))));
    });
    group.bench_function("breaker", |b| {
        b.iter(|| consume(through_attribute(black_box(7))));
    });
    group.bench_function("retry_and_breaker", |b| {
        b.iter(|| consume(through_retry_and_breaker(black_box(7))));
    });
    group.finish();
}

#[circuit_breaker(name = "bench.keyed", key = host)]
fn through_keyed(host: &str, x: u64) -> Result<u64, Unavailable> {
    work(x)
}

/// A keyed call finds its key's breaker by the key's text on every call
/// (a hash, and a shared lock of one shard), where an unkeyed call reads
/// its site's cached pointer: the price of one breaker per host. Beside
/// both, `recloser`'s closed path, the anchor of the `breaker` bench.
fn keyed(c: &mut Criterion) {
    let hosts: Vec<String> = (0..64).map(|i| format!("db-{i}.example:5432")).collect();
    for host in &hosts {
        through_keyed(host, 0).expect("closed");
    }
    through_attribute(0).expect("closed");
    let handle = registry().keyed("bench.keyed_handle", Config::default());
    let recloser = recloser::Recloser::custom()
        .error_rate(0.5)
        .closed_len(100)
        .open_wait(std::time::Duration::from_secs(60))
        .build();

    let mut group = c.benchmark_group("keyed");
    group.bench_function("unprotected", |b| {
        b.iter(|| consume(work(black_box(7))));
    });
    group.bench_function("attribute", |b| {
        b.iter(|| consume(through_attribute(black_box(7))));
    });
    group.bench_function("attribute_keyed", |b| {
        b.iter(|| consume(through_keyed(black_box(&hosts[3]), black_box(7))));
    });
    let mut next = 0;
    group.bench_function("attribute_keyed_64_hosts", |b| {
        b.iter(|| {
            next = (next + 1) % hosts.len();
            consume(through_keyed(black_box(&hosts[next]), black_box(7)));
        });
    });
    group.bench_function("keyed_get_and_call", |b| {
        b.iter(|| {
            let breaker = handle.get(black_box("db-3.example:5432"));
            consume(
                breaker
                    .call(|| work(black_box(7)))
                    .map_err(CallError::into_inner),
            );
        });
    });
    group.bench_function("recloser", |b| {
        b.iter(|| consume(recloser.call(|| work(black_box(7)))));
    });
    group.finish();
}

criterion_group!(benches, closed_path, first_attempt, keyed);
criterion_main!(benches);
