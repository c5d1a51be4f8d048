//! What the tests of the example service share: a hand-written HTTP/1.1
//! client (it shares no code with the service it checks), and its
//! breakers' options on a manual clock. Included by `#[path]`.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use circuit_runtime::{registry, Config, ManualClock};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// One HTTP/1.1 exchange, by hand so the test shares no client code with
/// the service: the status, the headers (lowercased names) and the body.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
) -> (u16, Vec<(String, String)>, String) {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.unwrap();
        String::from_utf8(raw).unwrap()
    };
    let raw = timeout(Duration::from_secs(10), exchange)
        .await
        .unwrap_or_else(|_| panic!("{method} {path} got no answer within 10 s"));
    let (head, body) = raw.split_once("\r\n\r\n").expect("a head and a body");
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|line| line.split_once(": "))
        .map(|(name, value)| (name.to_ascii_lowercase(), value.to_owned()))
        .collect::<Vec<_>>();
    let chunked = headers
        .iter()
        .any(|(name, value)| name == "transfer-encoding" && value == "chunked");
    (
        status,
        headers,
        if chunked {
            dechunk(body)
        } else {
            body.to_owned()
        },
    )
}

/// A chunked body's content.
fn dechunk(mut body: &str) -> String {
    let mut content = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap();
        if size == 0 {
            break;
        }
        content.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
    content
}

pub async fn json(addr: SocketAddr, path: &str) -> (u16, Value) {
    let (status, _, body) = request(addr, "GET", path).await;
    (
        status,
        serde_json::from_str(&body).unwrap_or_else(|err| panic!("{path}: {err}: {body}")),
    )
}

/// Gives `names` the example's options (`examples/axum_service.toml`) on
/// a manual clock, before their first call: an open circuit stays open
/// until the test moves the clock, however slow the machine.
pub fn on_a_manual_clock(names: &[&str]) -> ManualClock {
    let clock = ManualClock::new();
    for name in names {
        let config = Config::builder()
            .failure_threshold(3)
            .recovery_timeout(Duration::from_secs(2))
            .clock(clock.clone())
            .build()
            .unwrap();
        registry().configure(name, config);
    }
    clock
}
