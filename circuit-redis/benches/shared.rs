//! What sharing a breaker through Redis costs a call: the closed path of a
//! breaker shared by a running sync (against a real `redis-server` on
//! loopback, started here) beside the same breaker unshared, in one run.
//! Sharing should cost the closed path nothing: a call reads the breaker's
//! own atomics, and the sync works on a thread of its own.
//!
//! Run with `cargo bench -p circuit-redis --bench shared` (needs
//! `redis-server`).

use std::hint::black_box;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use circuit_redis::SharedBreakers;
use circuit_runtime::{Config, Registry};
use criterion::{criterion_group, criterion_main, Criterion};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn redis_server() -> (Server, String) {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port();
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .stdout(Stdio::null())
        .spawn()
        .expect("this bench runs a real Redis: install it with `apt-get install redis-server`");
    (Server(child), format!("redis://127.0.0.1:{port}"))
}

fn closed_path(c: &mut Criterion) {
    let (_server, url) = redis_server();
    let local: &'static Registry = Box::leak(Box::default());
    let shared: &'static Registry = Box::leak(Box::default());
    let unshared = local.get_or_create("bench.db", Config::default());
    let synced = shared.get_or_create("bench.db", Config::default());
    let sync = SharedBreakers::builder(url)
        .registry(shared)
        .share_transitions("bench.db")
        .start()
        .expect("the sync starts");
    let deadline = Instant::now() + Duration::from_secs(10);
    while sync.good_rounds() == 0 {
        assert!(Instant::now() < deadline, "the sync never reached Redis");
        std::thread::sleep(Duration::from_millis(10));
    }

    let mut group = c.benchmark_group("closed_success");
    group.bench_function("shared_through_redis", |b| {
        b.iter(|| black_box(synced.call(|| Ok::<_, ()>(black_box(7)))));
    });
    group.bench_function("local", |b| {
        b.iter(|| black_box(unshared.call(|| Ok::<_, ()>(black_box(7)))));
    });
    group.finish();
    assert!(!sync.is_degraded(), "Redis answered throughout");
}

criterion_group!(benches, closed_path);
criterion_main!(benches);
