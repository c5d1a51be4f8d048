//! The breaker's hot paths beside its Rust peers, `recloser` and `failsafe`
//! (and, for async calls, `tower-resilience-circuitbreaker`), measured in
//! one run so their ratios are comparable on a busy machine.
//!
//! Every library is configured as close to ours as its API allows: trip
//! after 5 consecutive failures (`recloser` only has a failure rate, so it
//! gets its default 100-call ring at a 50% rate, which it keeps in every
//! group), stay open 60 s (an hour when the group measures rejections).
//!
//! Run with `cargo bench -p circuit-runtime --bench breaker`.

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::Barrier;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use circuit_runtime::{CallError, CircuitBreaker, Config};
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion};
use failsafe::{backoff, failure_policy, CircuitBreaker as _};
use recloser::{AsyncRecloser, Recloser};

const RECOVERY: Duration = Duration::from_secs(60);
/// Long enough that no open breaker recovers while it is being measured.
const LONG_RECOVERY: Duration = Duration::from_secs(3600);
const THRESHOLD: u32 = 5;

/// Keeps a call's result alive the way a caller does, in memory, without
/// `black_box(value)`'s copy of it: that copy reads back with wide loads
/// what the call just wrote in narrower stores, and the stall it costs
/// depends on the result's layout, not on the code under measurement.
#[allow(clippy::inline_always, clippy::needless_pass_by_value)] // by value, in place: the point
#[inline(always)]
fn consume<T>(value: T) {
    black_box(&value);
}

fn ours(recovery_timeout: Duration) -> CircuitBreaker {
    let config = Config::builder()
        .failure_threshold(THRESHOLD)
        .recovery_timeout(recovery_timeout)
        .build()
        .expect("a valid config");
    CircuitBreaker::new("bench", config)
}

/// Ours with a count window judged by a failure rate: the same rule
/// `recloser` always applies.
fn ours_with_rate_window() -> CircuitBreaker {
    let config = Config::builder()
        .failure_threshold(THRESHOLD)
        .recovery_timeout(RECOVERY)
        .failure_rate_threshold(0.5)
        .window_size(100)
        .build()
        .expect("a valid config");
    CircuitBreaker::new("bench", config)
}

fn recloser(open_wait: Duration) -> Recloser {
    Recloser::custom()
        .error_rate(0.5)
        .closed_len(100)
        .open_wait(open_wait)
        .build()
}

fn failsafe(recovery: Duration) -> impl failsafe::CircuitBreaker + Send + Sync {
    let policy = failure_policy::consecutive_failures(THRESHOLD, backoff::constant(recovery));
    failsafe::Config::new().failure_policy(policy).build()
}

/// `failsafe`'s only rate rule: a success rate over a time window (it has
/// no count window). At least 50% successes over 60 s, judged from 10 calls.
fn failsafe_with_rate_window() -> impl failsafe::CircuitBreaker + Send + Sync {
    let policy = failure_policy::success_rate_over_time_window(
        0.5,
        10,
        Duration::from_secs(60),
        backoff::constant(RECOVERY),
    );
    failsafe::Config::new().failure_policy(policy).build()
}

fn configure(group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50);
}

fn closed_success(c: &mut Criterion) {
    let mut group = c.benchmark_group("closed_success");
    configure(&mut group);
    let x = 42_u64;

    group.bench_function("baseline", |b| {
        b.iter(|| {
            let call = || Ok::<_, ()>(black_box(x));
            consume(call());
        });
    });

    let breaker = ours(RECOVERY);
    let breaker = black_box(&breaker);
    group.bench_function("circuit_runtime", |b| {
        b.iter(|| consume(breaker.call(|| Ok::<_, ()>(black_box(x)))));
    });

    let recl = recloser(RECOVERY);
    let recl = black_box(&recl);
    group.bench_function("recloser", |b| {
        b.iter(|| consume(recl.call(|| Ok::<_, ()>(black_box(x)))));
    });

    let fs = failsafe(RECOVERY);
    let fs = black_box(&fs);
    group.bench_function("failsafe", |b| {
        b.iter(|| consume(fs.call(|| Ok::<_, ()>(black_box(x)))));
    });

    group.finish();
}

fn open_reject(c: &mut Criterion) {
    let mut group = c.benchmark_group("open_reject");
    configure(&mut group);
    let x = 42_u64;

    // The floor: rejecting an open breaker means knowing whether its open
    // time is up, so every correct rejection reads a clock. Ours reads the
    // time-stamp counter through `quanta`; `std` is what the others read.
    let counter = quanta::Clock::new();
    let origin = counter.raw();
    group.bench_function("clock_read_counter", |b| {
        b.iter(|| consume(counter.delta_as_nanos(origin, counter.raw())));
    });
    group.bench_function("clock_read_std", |b| {
        b.iter(|| consume(Instant::now()));
    });

    let breaker = ours(LONG_RECOVERY);
    while !matches!(
        breaker.call(|| Err::<u64, _>(())),
        Err(CallError::Rejected(_))
    ) {}
    let breaker = black_box(&breaker);
    group.bench_function("circuit_runtime", |b| {
        b.iter(|| {
            let result = breaker.call(|| Ok::<_, ()>(black_box(x)));
            debug_assert!(matches!(result, Err(CallError::Rejected(_))));
            consume(result);
        });
    });

    let recl = recloser(LONG_RECOVERY);
    while !matches!(
        recl.call(|| Err::<u64, _>(())),
        Err(recloser::Error::Rejected)
    ) {}
    let recl = black_box(&recl);
    group.bench_function("recloser", |b| {
        b.iter(|| {
            let result = recl.call(|| Ok::<_, ()>(black_box(x)));
            debug_assert!(matches!(result, Err(recloser::Error::Rejected)));
            consume(result);
        });
    });

    let fs = failsafe(LONG_RECOVERY);
    while !matches!(
        fs.call(|| Err::<u64, _>(())),
        Err(failsafe::Error::Rejected)
    ) {}
    let fs = black_box(&fs);
    group.bench_function("failsafe", |b| {
        b.iter(|| {
            let result = fs.call(|| Ok::<_, ()>(black_box(x)));
            debug_assert!(matches!(result, Err(failsafe::Error::Rejected)));
            consume(result);
        });
    });

    group.finish();
}

const THREADS: usize = 2;

/// Runs `call` `iters` times on each of [`THREADS`] threads at once and
/// returns the wall time from the common start to the last thread's end:
/// per iteration, that is what one call costs each thread while another
/// thread hammers the same breaker. Spawning is outside the timed span.
fn contended_run(iters: u64, call: impl Fn() + Sync) -> Duration {
    let start = Barrier::new(THREADS + 1);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..THREADS)
            .map(|_| {
                scope.spawn(|| {
                    call(); // the thread's first call sets up its thread-locals
                    start.wait();
                    for _ in 0..iters {
                        call();
                    }
                })
            })
            .collect();
        start.wait();
        let began = Instant::now();
        for worker in workers {
            worker.join().expect("a benchmark thread panicked");
        }
        began.elapsed()
    })
}

fn contended(c: &mut Criterion) {
    let mut group = c.benchmark_group("contended");
    configure(&mut group);
    let x = 42_u64;

    let breaker = ours(RECOVERY);
    group.bench_function("circuit_runtime", |b| {
        b.iter_custom(|iters| {
            contended_run(iters, || {
                consume(black_box(&breaker).call(|| Ok::<_, ()>(black_box(x))));
            })
        });
    });

    let recl = recloser(RECOVERY);
    group.bench_function("recloser", |b| {
        b.iter_custom(|iters| {
            contended_run(iters, || {
                consume(black_box(&recl).call(|| Ok::<_, ()>(black_box(x))));
            })
        });
    });

    let fs = failsafe(RECOVERY);
    group.bench_function("failsafe", |b| {
        b.iter_custom(|iters| {
            contended_run(iters, || {
                consume(black_box(&fs).call(|| Ok::<_, ()>(black_box(x))));
            })
        });
    });

    group.finish();
}

fn rate_window(c: &mut Criterion) {
    let mut group = c.benchmark_group("rate_window");
    configure(&mut group);
    let x = 42_u64;

    let breaker = ours_with_rate_window();
    let breaker = black_box(&breaker);
    group.bench_function("circuit_runtime", |b| {
        b.iter(|| consume(breaker.call(|| Ok::<_, ()>(black_box(x)))));
    });

    let recl = recloser(RECOVERY);
    let recl = black_box(&recl);
    group.bench_function("recloser", |b| {
        b.iter(|| consume(recl.call(|| Ok::<_, ()>(black_box(x)))));
    });

    let fs = failsafe_with_rate_window();
    let fs = black_box(&fs);
    group.bench_function("failsafe", |b| {
        b.iter(|| consume(fs.call(|| Ok::<_, ()>(black_box(x)))));
    });

    group.finish();
}

/// Polls a future that is ready on its first poll, as an executor would,
/// without an executor's own costs in the measurement. Inlined, so the
/// future is pinned where it is built, as `.await` does in an `async fn`:
/// called, it took the future by copy, and the copy's wide loads of the
/// future's narrow stores stalled, by how much depending on each future's
/// layout rather than its work.
#[allow(clippy::inline_always)] // the point, above
#[inline(always)]
fn poll_ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(futures::task::noop_waker_ref()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => unreachable!("the measured futures are ready at once"),
    }
}

/// The closed path of an async call: the protected future is ready at
/// once, so what is measured is the wrapping future's own cost.
fn async_closed(c: &mut Criterion) {
    let mut group = c.benchmark_group("async_closed");
    configure(&mut group);
    let x = 42_u64;

    group.bench_function("baseline", |b| {
        b.iter(|| consume(poll_ready(async { Ok::<_, ()>(black_box(x)) })));
    });

    let breaker = ours(RECOVERY);
    let breaker = black_box(&breaker);
    group.bench_function("circuit_runtime", |b| {
        b.iter(|| {
            consume(poll_ready(
                breaker.call_async(async { Ok::<_, ()>(black_box(x)) }),
            ));
        });
    });

    let recl = AsyncRecloser::from(recloser(RECOVERY));
    let recl = black_box(&recl);
    group.bench_function("recloser", |b| {
        b.iter(|| consume(poll_ready(recl.call(async { Ok::<_, ()>(black_box(x)) }))));
    });

    // A tower layer: its closed path goes through `poll_ready` and `call`,
    // and boxes the response future.
    let layer = tower_resilience_circuitbreaker::CircuitBreakerLayer::builder()
        .failure_rate_threshold(0.5)
        .sliding_window_size(100)
        .wait_duration_in_open(RECOVERY)
        .build()
        .expect("a valid config");
    let mut service = layer.layer_fn(tower::service_fn(|x: u64| async move {
        Ok::<_, ()>(black_box(x))
    }));
    group.bench_function("tower_resilience", |b| {
        b.iter(|| {
            let mut cx = Context::from_waker(futures::task::noop_waker_ref());
            let ready = tower::Service::poll_ready(&mut service, &mut cx);
            debug_assert!(matches!(ready, Poll::Ready(Ok(()))));
            consume(poll_ready(tower::Service::call(&mut service, x)));
        });
    });

    // Ours as a tower layer (feature `tower`), around the same service.
    #[cfg(feature = "tower")]
    {
        use tower::Layer;
        let layer = circuit_runtime::tower::CircuitBreakerLayer::from_breaker(std::sync::Arc::new(
            ours(RECOVERY),
        ));
        let mut service = layer.layer(tower::service_fn(|x: u64| async move {
            Ok::<_, ()>(black_box(x))
        }));
        group.bench_function("circuit_runtime_layer", |b| {
            b.iter(|| {
                let mut cx = Context::from_waker(futures::task::noop_waker_ref());
                let ready = tower::Service::poll_ready(&mut service, &mut cx);
                debug_assert!(matches!(ready, Poll::Ready(Ok(()))));
                consume(poll_ready(tower::Service::call(&mut service, x)));
            });
        });
    }

    group.finish();
}

/// What observing costs: a breaker with an event hook beside one without,
/// on the closed path (which has no event, so should cost nothing) and on
/// the rejection path (which builds the event and runs the hook). With
/// feature `metrics`, also the closed path of a registry breaker while a
/// Prometheus exporter is installed and fed by a publisher thread: run it
/// with and without the feature to compare the binaries, e.g.
/// `cargo bench -p circuit-runtime --features metrics --bench breaker -- observability`.
fn observability(c: &mut Criterion) {
    let mut group = c.benchmark_group("observability");
    configure(&mut group);
    let x = 42_u64;

    let unobserved = ours(LONG_RECOVERY);
    let observed = ours(LONG_RECOVERY);
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let count = std::sync::Arc::clone(&seen);
    observed.on_event(move |_| {
        count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    });
    for (label, breaker) in [("unobserved", &unobserved), ("observed", &observed)] {
        let breaker = black_box(breaker);
        group.bench_function(format!("closed_success/{label}"), |b| {
            b.iter(|| consume(breaker.call(|| Ok::<_, ()>(black_box(x)))));
        });
    }
    #[cfg(feature = "metrics")]
    let _publisher = {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        metrics::set_global_recorder(recorder).expect("no recorder installed before");
        let exported =
            circuit_runtime::registry().get_or_create("bench.exported", ours(RECOVERY).config());
        let publisher = circuit_runtime::MetricsPublisher::start(
            circuit_runtime::registry(),
            Duration::from_millis(100),
        )
        .expect("a publisher thread");
        let breaker = black_box(&*exported);
        group.bench_function("closed_success/prometheus_exported", |b| {
            b.iter(|| consume(breaker.call(|| Ok::<_, ()>(black_box(x)))));
        });
        publisher
    };
    for (label, breaker) in [("unobserved", &unobserved), ("observed", &observed)] {
        breaker.force_open();
        let breaker = black_box(breaker);
        group.bench_function(format!("open_reject/{label}"), |b| {
            b.iter(|| consume(breaker.call(|| Ok::<_, ()>(black_box(x)))));
        });
    }
    assert!(seen.load(std::sync::atomic::Ordering::Relaxed) > 0);

    group.finish();
}

/// What a concurrency limit costs: a breaker without `max_concurrent_calls`
/// beside one with it, on the closed path (sync and async), in one run. The
/// unlimited breaker should cost what `closed_success/circuit_runtime` does
/// (its only price is one load, tested with the state word); the limited
/// one takes a slot and gives it back, two read-modify-writes of one word.
fn bulkhead(c: &mut Criterion) {
    let mut group = c.benchmark_group("bulkhead");
    configure(&mut group);
    let x = 42_u64;

    let unlimited = ours(RECOVERY);
    let limited = CircuitBreaker::new(
        "bench",
        Config::builder()
            .failure_threshold(THRESHOLD)
            .recovery_timeout(RECOVERY)
            .max_concurrent_calls(64)
            .build()
            .expect("a valid config"),
    );
    for (label, breaker) in [("unlimited", &unlimited), ("limited", &limited)] {
        let breaker = black_box(breaker);
        group.bench_function(format!("closed_success/{label}"), |b| {
            b.iter(|| consume(breaker.call(|| Ok::<_, ()>(black_box(x)))));
        });
    }
    for (label, breaker) in [("unlimited", &unlimited), ("limited", &limited)] {
        let breaker = black_box(breaker);
        group.bench_function(format!("async_closed/{label}"), |b| {
            b.iter(|| {
                consume(poll_ready(
                    breaker.call_async(async { Ok::<_, ()>(black_box(x)) }),
                ));
            });
        });
    }
    assert_eq!(limited.metrics().bulkhead_rejected, 0);

    group.finish();
}

criterion_group!(
    benches,
    closed_success,
    open_reject,
    contended,
    rate_window,
    async_closed,
    observability,
    bulkhead
);
criterion_main!(benches);
