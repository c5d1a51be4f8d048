//! The dashboard in a real browser: headless Chromium loads `/circuits`
//! from the example service, runs the page's script against the live
//! health endpoint, and the test reads the DOM it drew. A screenshot of
//! the open circuit is kept under `target/tmp/dashboard/`.
//!
//! Needs Debian's `chromium` package (`apt-get install -y chromium`);
//! without it the test fails and says so.

#[allow(dead_code)] // its `main` is the example's, not this test's
#[path = "../examples/axum_service.rs"]
mod axum_service;
#[path = "common/service.rs"]
mod service;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use service::{json, on_a_manual_clock, request};

/// The browser: `CHROMIUM` if set, else Debian's `chromium`.
fn chromium() -> PathBuf {
    let candidate =
        std::env::var_os("CHROMIUM").map_or_else(|| PathBuf::from("chromium"), PathBuf::from);
    let found = Command::new(&candidate)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    assert!(
        found,
        "the dashboard test needs a headless Chromium: install Debian's `chromium` package \
         (`apt-get install -y chromium`), or set CHROMIUM to a Chromium binary"
    );
    candidate
}

/// Runs headless Chromium on `url` with `extra` arguments, giving the
/// page's script three seconds of (virtual) time, and returns what it
/// printed. Bounded: a browser that hangs is killed and fails the test.
fn headless(browser: &Path, url: &str, extra: &[&str]) -> String {
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--virtual-time-budget=3000",
        ])
        .args(extra)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium starts");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if child.try_wait().expect("chromium's status").is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish {url} within 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().expect("chromium's output");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The page's DOM after its script ran.
async fn dashboard_dom(browser: PathBuf, service: SocketAddr) -> String {
    let url = format!("http://{service}/circuits");
    tokio::task::spawn_blocking(move || headless(&browser, &url, &["--dump-dom"]))
        .await
        .unwrap()
}

/// The cards drawn, in page order: (name, state).
fn cards(dom: &str) -> Vec<(String, String)> {
    let attribute = |tag: &str, name: &str| {
        let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
        Some(tag[start..].split('"').next()?.to_owned())
    };
    dom.split("<section ")
        .skip(1)
        .filter_map(|rest| {
            let tag = &rest[..rest.find('>')?];
            Some((attribute(tag, "data-name")?, attribute(tag, "data-state")?))
        })
        .collect()
}

fn state_of(cards: &[(String, String)], name: &str) -> Option<String> {
    cards
        .iter()
        .find(|(card, _)| card == name)
        .map(|(_, state)| state.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tripped_breaker_turns_its_card_open_first_and_back_after_recovery() {
    let browser = chromium();
    let addresses = axum_service::start(0).await.unwrap();
    let clock = on_a_manual_clock(&["quotes", "inventory"]);
    let (service, upstream) = (addresses.service, addresses.upstream);
    assert_eq!(json(service, "/quotes/1").await.0, 200);
    assert_eq!(request(service, "GET", "/inventory/1").await.0, 200);

    let (status, _, page) = request(service, "GET", "/circuits").await;
    assert_eq!(status, 200);
    assert!(page.contains("<title>Circuits</title>"));

    let dom = dashboard_dom(browser.clone(), service).await;
    let drawn = cards(&dom);
    assert_eq!(
        drawn,
        [
            ("inventory".to_owned(), "closed".to_owned()),
            ("quotes".to_owned(), "closed".to_owned()),
        ],
        "the page drew no cards from the health endpoint:\n{dom}"
    );

    // Trip `quotes`: its card turns open and moves first.
    assert_eq!(request(upstream, "PUT", "/failure-rate/100").await.0, 200);
    for _ in 0..4 {
        let _ = json(service, "/quotes/1").await;
    }
    let dom = dashboard_dom(browser.clone(), service).await;
    let drawn = cards(&dom);
    assert_eq!(
        drawn
            .first()
            .map(|(name, state)| (name.as_str(), state.as_str())),
        Some(("quotes", "open")),
        "{drawn:?}"
    );
    assert!(dom.contains(r#"data-healthy="false""#));
    assert!(dom.contains("1 open: quotes"), "the summary names it");

    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard");
    std::fs::create_dir_all(&shots).unwrap();
    let shot = shots.join("open-circuit.png");
    let _ = std::fs::remove_file(&shot);
    let screenshot_flag = format!("--screenshot={}", shot.display());
    let url = format!("http://{service}/circuits");
    let browser_for_shot = browser.clone();
    tokio::task::spawn_blocking(move || {
        headless(
            &browser_for_shot,
            &url,
            &[
                &screenshot_flag,
                "--window-size=1280,720",
                "--hide-scrollbars",
            ],
        )
    })
    .await
    .unwrap();
    let size = std::fs::metadata(&shot).map_or(0, |meta| meta.len());
    assert!(size > 1000, "no screenshot at {}", shot.display());

    // Heal the upstream; once the 2 s open time has passed, a trial
    // closes it.
    assert_eq!(request(upstream, "PUT", "/failure-rate/0").await.0, 200);
    clock.advance(Duration::from_secs(2));
    assert_eq!(json(service, "/quotes/1").await.1["source"], "upstream");
    let dom = dashboard_dom(browser, service).await;
    assert_eq!(state_of(&cards(&dom), "quotes").as_deref(), Some("closed"));
    assert!(dom.contains(r#"data-healthy="true""#));
}
