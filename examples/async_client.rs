//! A tokio client whose protected `async fn` talks over real TCP to a flaky
//! quote server started on 127.0.0.1: watch the breaker trip, the fallback
//! answer while it is open, and a trial call close it again.
//!
//! Run it with `cargo run --example async_client`. It ends on its own in
//! about a second.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use circuit_runtime::{circuit_breaker, registry, CircuitOpenError, State};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug)]
enum ClientError {
    Io(std::io::Error),
    Server(String),
    Unavailable(CircuitOpenError),
}

impl From<std::io::Error> for ClientError {
    fn from(err: std::io::Error) -> Self {
        ClientError::Io(err)
    }
}

impl From<CircuitOpenError> for ClientError {
    fn from(open: CircuitOpenError) -> Self {
        ClientError::Unavailable(open)
    }
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Io(err) => write!(f, "i/o error: {err}"),
            ClientError::Server(reply) => write!(f, "server error: {reply}"),
            ClientError::Unavailable(open) => open.fmt(f),
        }
    }
}

/// Asks the server for a quote: one line out, one line back.
#[circuit_breaker(
    name = "async_client.quotes",
    failure_threshold = 3,
    recovery_timeout = "300ms",
    fallback = cached_quote
)]
async fn fetch_quote(server: SocketAddr, symbol: &str) -> Result<String, ClientError> {
    let mut stream = TcpStream::connect(server).await?;
    stream.write_all(format!("{symbol}\n").as_bytes()).await?;
    let mut reply = String::new();
    let mut reader = BufReader::new(stream);
    tokio::time::timeout(Duration::from_secs(1), reader.read_line(&mut reply))
        .await
        .map_err(|_| ClientError::Server("timed out".to_owned()))??;
    let reply = reply.trim().to_owned();
    match reply.strip_prefix("OK ") {
        Some(price) => Ok(price.to_owned()),
        None => Err(ClientError::Server(reply)),
    }
}

/// Answers while the breaker is open, without touching the network.
#[allow(clippy::unused_async, clippy::unnecessary_wraps)] // a fallback mirrors the function
async fn cached_quote(_server: SocketAddr, symbol: &str) -> Result<String, ClientError> {
    Ok(format!("{symbol} 100.00 (cached)"))
}

/// A quote server that answers `OK <price>` while healthy and `ERR` while not.
async fn serve(listener: TcpListener, healthy: Arc<AtomicBool>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let healthy = Arc::clone(&healthy);
        tokio::spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut symbol = String::new();
            if BufReader::new(read).read_line(&mut symbol).await.is_err() {
                return;
            }
            let reply = if healthy.load(Ordering::SeqCst) {
                format!("OK {} 101.50\n", symbol.trim())
            } else {
                "ERR 503 overloaded\n".to_owned()
            };
            let _ = write.write_all(reply.as_bytes()).await;
        });
    }
}

fn state() -> State {
    registry()
        .get("async_client.quotes")
        .map_or(State::Closed, |breaker| breaker.state())
}

async fn call(server: SocketAddr, label: &str) {
    let reply = fetch_quote(server, "RUST").await;
    let shown = match &reply {
        Ok(price) => format!("ok    {price}"),
        Err(err) => format!("error {err}"),
    };
    println!("  {label:<22} {shown:<42} breaker: {}", state());
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let server = listener.local_addr()?;
    let healthy = Arc::new(AtomicBool::new(true));
    let server_task = tokio::spawn(serve(listener, Arc::clone(&healthy)));
    println!("quote server listening on {server}");

    println!("1. healthy server: calls go over TCP");
    for _ in 0..2 {
        call(server, "healthy").await;
    }

    println!("2. the server starts failing: three failures trip the breaker");
    healthy.store(false, Ordering::SeqCst);
    for _ in 0..3 {
        call(server, "server failing").await;
    }

    println!("3. open: calls are rejected locally and the fallback answers");
    for _ in 0..2 {
        call(server, "rejected").await;
    }

    println!("4. the server recovers; after 300 ms a trial call closes the breaker");
    healthy.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(350)).await;
    call(server, "trial").await;
    call(server, "closed again").await;

    for snapshot in registry().snapshots() {
        let m = &snapshot.metrics;
        println!(
            "registry: {} is {}; ok={} failed={} rejected={} opened={} closed={}",
            snapshot.name,
            snapshot.state,
            m.successful_calls,
            m.failed_calls,
            m.rejected_calls,
            m.times_opened,
            m.times_closed
        );
    }
    server_task.abort();
    Ok(())
}
