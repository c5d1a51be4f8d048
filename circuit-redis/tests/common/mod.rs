//! A real `redis-server` on a free loopback port, started and stopped by
//! the tests, and two "replicas" (registries of their own) sharing it.

#![allow(dead_code)] // each test binary uses its own part

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use circuit_redis::{SharedBreakers, SharedBreakersBuilder};
use circuit_runtime::{Config, Registry};

/// A `redis-server` child process; killed when dropped.
pub struct RedisServer {
    pub port: u16,
    child: Child,
}

impl RedisServer {
    /// Starts a server on a free port, without persistence, and waits until
    /// it answers.
    ///
    /// # Panics
    ///
    /// When `redis-server` is not installed: the tests need a real one.
    pub fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free loopback port")
            .port();
        Self::start_on(port)
    }

    /// Starts a server on `port` (again, after [`stop`](Self::stop)).
    pub fn start_on(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "these tests run a real Redis: `redis-server` could not start ({error}); \
                     install it with `apt-get install redis-server`"
                )
            });
        let server = Self { port, child };
        let deadline = Instant::now() + Duration::from_secs(10);
        while server.command("PING").as_deref() != Some("+PONG") {
            assert!(
                Instant::now() < deadline,
                "redis-server on port {port} never answered"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Sends one inline command and returns the first line of the reply.
    pub fn command(&self, command: &str) -> Option<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
        stream.write_all(format!("{command}\r\n").as_bytes()).ok()?;
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        if line.starts_with('$') && !line.starts_with("$-1") {
            line.clear();
            reader.read_line(&mut line).ok()?;
        }
        Some(line.trim_end().to_owned())
    }

    /// Kills the server, as a crash would.
    pub fn stop(mut self) -> u16 {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.port
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One replica: a registry of its own with the breaker `name`, shared
/// through the server at `url`.
pub struct Replica {
    pub registry: &'static Registry,
    pub shared: SharedBreakers,
}

pub const SYNC: Duration = Duration::from_millis(20);

impl Replica {
    pub fn new(url: &str, id: &str, name: &str, config: Config) -> Self {
        Self::sharing(url, id, name, config, false)
    }

    /// A replica that shares the counts of `name` too.
    pub fn counting(url: &str, id: &str, name: &str, config: Config) -> Self {
        Self::sharing(url, id, name, config, true)
    }

    fn sharing(url: &str, id: &str, name: &str, config: Config, counts: bool) -> Self {
        Self::built(url, id, name, config, |builder| {
            if counts {
                builder.share_counters(name)
            } else {
                builder.share_transitions(name)
            }
        })
    }

    /// A replica whose sharing `configure` describes.
    pub fn built(
        url: &str,
        id: &str,
        name: &str,
        config: Config,
        configure: impl FnOnce(SharedBreakersBuilder) -> SharedBreakersBuilder,
    ) -> Self {
        let registry: &'static Registry = Box::leak(Box::default());
        registry.get_or_create(name, config);
        let shared = configure(SharedBreakers::builder(url))
            .registry(registry)
            .replica(id)
            .sync_interval(SYNC)
            .max_staleness(Duration::from_millis(200))
            .start()
            .expect("the sync starts");
        Self { registry, shared }
    }

    pub fn breaker(&self, name: &str) -> std::sync::Arc<circuit_runtime::CircuitBreaker> {
        self.registry.get(name).expect("registered")
    }
}

/// Waits, up to a bound, until `condition` holds: the sync runs on its own
/// thread, on a real network.
pub fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A TCP proxy on a free loopback port in front of `port` that holds
/// every chunk for `delay` before passing it on, both ways: a slow Redis.
pub struct SlowProxy {
    pub port: u16,
}

impl SlowProxy {
    pub fn start(port: u16, delay: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
        let proxy_port = listener.local_addr().expect("bound").port();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(("127.0.0.1", port)) else {
                    continue;
                };
                relay(&client, &server, delay);
                relay(&server, &client, delay);
            }
        });
        Self { port: proxy_port }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

/// Copies `from` to `to` on a thread of its own, each chunk late.
fn relay(from: &TcpStream, to: &TcpStream, delay: Duration) {
    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else {
        return;
    };
    std::thread::spawn(move || {
        let mut buffer = [0_u8; 16 * 1024];
        loop {
            let read = match std::io::Read::read(&mut from, &mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(read) => read,
            };
            std::thread::sleep(delay);
            if to.write_all(&buffer[..read]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(std::net::Shutdown::Both);
    });
}
