//! The example service over real HTTP on loopback: its handler falls back
//! when the upstream fails, the health endpoint and `/metrics` report the
//! open circuit, and recovery shows in both. The example's own `start`
//! runs in this process, on ephemeral ports.

#[allow(dead_code)] // its `main` is the example's, not this test's
#[path = "../examples/axum_service.rs"]
mod axum_service;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// One HTTP/1.1 exchange, by hand so the test shares no client code with
/// the service: the status, the headers (lowercased names) and the body.
async fn request(
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

async fn json(addr: SocketAddr, path: &str) -> (u16, Value) {
    let (status, _, body) = request(addr, "GET", path).await;
    (
        status,
        serde_json::from_str(&body).unwrap_or_else(|err| panic!("{path}: {err}: {body}")),
    )
}

/// The lines of a scrape that start with `prefix`.
fn scraped(scrape: &str, prefix: &str) -> Vec<String> {
    scrape
        .lines()
        .filter(|line| line.starts_with(prefix))
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_falls_back_reports_the_open_circuit_and_recovers() {
    let addresses = axum_service::start(0).await.unwrap();
    let (service, upstream) = (addresses.service, addresses.upstream);

    let (status, quote) = json(service, "/quotes/7").await;
    assert_eq!((status, &quote["source"]), (200, &Value::from("upstream")));
    assert_eq!(request(service, "GET", "/inventory/7").await.2, "21");

    // The upstream fails every request: three failures open each breaker.
    assert_eq!(request(upstream, "PUT", "/failure-rate/100").await.0, 200);
    for _ in 0..4 {
        let (status, quote) = json(service, "/quotes/7").await;
        assert_eq!(status, 200);
        assert_eq!(
            quote["error"], "served from cache",
            "the handler fell back: {quote}"
        );
    }
    for _ in 0..3 {
        assert_eq!(request(service, "GET", "/inventory/7").await.0, 500);
    }
    let (status, headers, body) = request(service, "GET", "/inventory/7").await;
    assert_eq!(status, 503, "{body}");
    let retry_after: u64 = headers
        .iter()
        .find(|(name, _)| name == "retry-after")
        .map(|(_, value)| value.parse().unwrap())
        .expect("a Retry-After header");
    assert!(
        (1..=2).contains(&retry_after),
        "retry after {retry_after} s"
    );

    for path in ["/health/circuits", "/health/circuit-breakers"] {
        let (status, health) = json(service, path).await;
        assert_eq!(status, 200, "an open circuit is the breaker doing its job");
        assert_eq!(health["healthy"], false);
        assert_eq!(
            health["open_circuits"],
            serde_json::json!(["inventory", "quotes"])
        );
    }
    let (status, health) = json(service, "/health/circuits?strict=true").await;
    assert_eq!((status, &health["healthy"]), (503, &Value::from(false)));

    let (status, _, scrape) = request(service, "GET", "/metrics").await;
    assert_eq!(status, 200);
    assert_eq!(
        scraped(&scrape, r#"circuit_breaker_state{name="quotes"}"#),
        [r#"circuit_breaker_state{name="quotes"} 2"#]
    );
    assert_eq!(
        scraped(
            &scrape,
            r#"circuit_breaker_calls_total{name="quotes",result="rejected"}"#
        ),
        [r#"circuit_breaker_calls_total{name="quotes",result="rejected"} 1"#]
    );
    assert_eq!(
        scraped(
            &scrape,
            r#"circuit_breaker_transitions_total{name="quotes",from_state="closed",to_state="open"}"#
        ),
        [
            r#"circuit_breaker_transitions_total{name="quotes",from_state="closed",to_state="open"} 1"#
        ]
    );
    assert_eq!(
        scraped(
            &scrape,
            r#"circuit_breaker_fallback_calls_total{name="quotes",reason="rejected"}"#
        ),
        [r#"circuit_breaker_fallback_calls_total{name="quotes",reason="rejected"} 1"#]
    );

    // The upstream heals; after the configured 2 s open time the next calls
    // are trials, and they close the breakers.
    assert_eq!(request(upstream, "PUT", "/failure-rate/0").await.0, 200);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (_, quote) = json(service, "/quotes/7").await;
        let inventory = request(service, "GET", "/inventory/7").await.0;
        if quote["source"] == "upstream" && inventory == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never recovered: {quote}, inventory {inventory}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, health) = json(service, "/health/circuits?strict=true").await;
    assert_eq!((status, &health["healthy"]), (200, &Value::from(true)));
    let (_, _, scrape) = request(service, "GET", "/metrics").await;
    assert_eq!(
        scraped(&scrape, r#"circuit_breaker_state{name="quotes"}"#),
        [r#"circuit_breaker_state{name="quotes"} 0"#]
    );
    assert_eq!(
        scraped(
            &scrape,
            r#"circuit_breaker_transitions_total{name="quotes",from_state="half_open",to_state="closed"}"#
        ),
        [
            r#"circuit_breaker_transitions_total{name="quotes",from_state="half_open",to_state="closed"} 1"#
        ]
    );
}
