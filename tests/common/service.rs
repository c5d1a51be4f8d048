//! What the tests of the example service share: a hand-written HTTP/1.1
//! client (it shares no code with the service it checks), and its
//! breakers, with the options of its configuration file, on a manual
//! clock. Included by `#[path]`.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use circuit_runtime::{registry, Config, ManualClock, Registry};
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

/// The example's configuration file.
pub const CONFIG_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/axum_service.toml");

/// Builds the example's breakers `names` now, before their first call,
/// with the options of its configuration file and only the clock swapped
/// for a manual one: an open circuit stays open until the test moves the
/// clock, however slow the machine, and a change to the file is what the
/// test exercises. Call it after `axum_service::start`, which loads the
/// file.
///
/// The clock comes in as the breakers' code options (with no option of
/// their own), which the registry layers the file's options over.
pub fn on_a_manual_clock(names: &[&str]) -> ManualClock {
    let clock = ManualClock::new();
    let on_the_clock = Config::builder().clock(clock.clone()).build().unwrap();
    // The file's options, read apart from the service's registry.
    let file = Registry::new();
    file.load_toml_file(CONFIG_FILE).unwrap();
    for name in names {
        assert!(
            registry().get(name).is_none(),
            "`{name}` was called before the test put it on its clock"
        );
        let breaker = registry().get_or_create(name, on_the_clock.clone());
        let config = breaker.config();
        assert_eq!(config.manual_clock(), Some(&clock), "{name}");
        let from_file = file.get_or_create(name, Config::default()).config();
        assert!(
            config.differences(&from_file).is_empty(),
            "`{name}` differs from {CONFIG_FILE} in {:?}",
            config.differences(&from_file)
        );
    }
    clock
}

/// The configuration `name` runs with: the file's options.
pub fn config_of(name: &str) -> Config {
    registry()
        .get(name)
        .unwrap_or_else(|| panic!("no breaker `{name}`"))
        .config()
}

/// The entry for breaker `name` in a `/health` answer.
pub fn circuit<'a>(health: &'a Value, name: &str) -> &'a Value {
    health["circuits"]
        .as_array()
        .and_then(|circuits| circuits.iter().find(|circuit| circuit["name"] == name))
        .unwrap_or_else(|| panic!("no circuit `{name}` in {health}"))
}
