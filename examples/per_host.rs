//! One breaker per host behind one client type: host A goes down, its
//! breaker opens, and calls to the healthy host B keep going through.
//! With one breaker for the method (no `key`), A's failures would have
//! opened it for B too.
//!
//! Two real TCP servers on 127.0.0.1 stand in for the hosts: A answers
//! every request by closing the connection, B answers `ok`.
//!
//! Run it with `cargo run --example per_host`.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use circuit_runtime::{circuit_breaker, registry, CircuitOpenError, FallbackCause};

#[derive(Debug)]
enum FetchError {
    Io(std::io::Error),
    Unavailable(CircuitOpenError),
}

impl From<CircuitOpenError> for FetchError {
    fn from(open: CircuitOpenError) -> Self {
        FetchError::Unavailable(open)
    }
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchError::Io(error) => write!(f, "{error}"),
            FetchError::Unavailable(open) => open.fmt(f),
        }
    }
}

/// A client of one host. Every client shares the method's call site; the
/// key gives each host its own breaker, `upstream/<host>`.
struct Client {
    host: SocketAddr,
}

impl Client {
    #[circuit_breaker(
        name = "upstream",
        key = self.host,
        failure_threshold = 2,
        recovery_timeout = "30s",
        fallback = Self::unavailable
    )]
    fn fetch(&self, path: &str) -> Result<String, FetchError> {
        let mut stream = TcpStream::connect_timeout(&self.host, Duration::from_secs(1))
            .map_err(FetchError::Io)?;
        stream
            .set_read_timeout(Some(Duration::from_secs(1)))
            .map_err(FetchError::Io)?;
        writeln!(stream, "GET {path}").map_err(FetchError::Io)?;
        let mut line = String::new();
        BufReader::new(stream)
            .read_line(&mut line)
            .map_err(FetchError::Io)?;
        if line.is_empty() {
            return Err(FetchError::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
        Ok(line.trim_end().to_owned())
    }

    /// Runs when the host's breaker rejects the call, and says why.
    #[allow(clippy::unnecessary_wraps, clippy::needless_pass_by_value)]
    fn unavailable(
        &self,
        path: &str,
        cause: FallbackCause<'_, FetchError>,
    ) -> Result<String, FetchError> {
        Ok(format!("(fallback for {path} on {}: {cause})", self.host))
    }
}

/// A server on an ephemeral loopback port; `healthy` ones answer `ok`,
/// the others close each connection without a word.
fn serve(healthy: bool) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            if healthy {
                let mut request = String::new();
                let mut reader = BufReader::new(&stream);
                if reader.read_line(&mut request).is_ok() {
                    let _ = writeln!(&stream, "ok");
                }
            }
        }
    });
    Ok(addr)
}

fn main() -> std::io::Result<()> {
    let a = Client {
        host: serve(false)?,
    };
    let b = Client { host: serve(true)? };
    println!("host A {} is down, host B {} is up\n", a.host, b.host);

    for round in 1..=3 {
        println!("round {round}");
        for (label, client) in [("A", &a), ("B", &b)] {
            match client.fetch("/quotes") {
                Ok(answer) => println!("  {label}: {answer}"),
                Err(error) => println!("  {label}: error: {error}"),
            }
        }
    }

    println!("\nbreakers:");
    for snapshot in registry().snapshots() {
        println!("  {:<28} {}", snapshot.name, snapshot.state);
    }
    let health = registry().health();
    println!("open circuits: {:?}", health.open_circuits);
    Ok(())
}
