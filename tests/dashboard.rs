//! The dashboard in a real browser: headless Chromium loads `/circuits`
//! from the example service, runs the page's script against the live
//! health endpoint, and the test reads the DOM it drew. Screenshots of
//! the open circuit, on a wide screen and on a phone, are kept under
//! `target/tmp/dashboard/`. The breakers run with the options of
//! `examples/axum_service.toml`, on a manual clock.
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

use circuit_runtime::Config;
use serde_json::Value;
use service::{circuit, config_of, json, on_a_manual_clock, request};

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
/// page's script 1.5 s of virtual time (two polls of the health
/// endpoint, enough for a sparkline; less than the breakers' open time,
/// though they run on a manual clock anyway), and returns what it
/// printed. Bounded: a browser that hangs is killed and fails the test.
fn headless(browser: &Path, url: &str, extra: &[&str]) -> String {
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--virtual-time-budget=1500",
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
    dom.split("<section ")
        .skip(1)
        .filter_map(|rest| {
            let tag = &rest[..rest.find('>')?];
            Some((attribute(tag, "data-name")?, attribute(tag, "data-state")?))
        })
        .collect()
}

/// The value of attribute `name` in an element's opening `tag`.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    Some(tag[start..].split('"').next()?.to_owned())
}

fn state_of(cards: &[(String, String)], name: &str) -> Option<String> {
    cards
        .iter()
        .find(|(card, _)| card == name)
        .map(|(_, state)| state.clone())
}

/// The card of breaker `name` as drawn, from its opening tag to its end.
fn card<'a>(dom: &'a str, name: &str) -> &'a str {
    let start = dom
        .find(&format!(r#"data-name="{name}""#))
        .and_then(|at| dom[..at].rfind("<section "))
        .unwrap_or_else(|| panic!("no card for `{name}`:\n{dom}"));
    let end = dom[start..].find("</section>").expect("a card's end") + start;
    &dom[start..end]
}

/// What a card shows for `fact` (`calls`, `rejected`, `next trial`...).
fn fact<'a>(card: &'a str, fact: &str) -> &'a str {
    let marker = format!(r#"data-fact="{fact}">"#);
    let start = card
        .find(&marker)
        .unwrap_or_else(|| panic!("the card shows no `{fact}`:\n{card}"))
        + marker.len();
    card[start..].split('<').next().unwrap_or_default()
}

/// The opening tag of the first element of `class` in `html`.
fn element<'a>(html: &'a str, class: &str) -> Option<&'a str> {
    let at = html.find(&format!(r#"class="{class}""#))?;
    let start = html[..at].rfind('<')?;
    Some(&html[start..start + html[start..].find('>')?])
}

/// The percentage an element's inline style gives `property`.
fn style_percent(tag: &str, property: &str) -> f64 {
    let style = attribute(tag, "style").unwrap_or_else(|| panic!("no style in {tag}"));
    style
        .split(';')
        .filter_map(|declaration| declaration.split_once(':'))
        .find(|(name, _)| name.trim() == property)
        .and_then(|(_, value)| value.trim().strip_suffix('%')?.parse().ok())
        .unwrap_or_else(|| panic!("no `{property}` in percent in {tag}"))
}

/// A rate as the page writes it: `0.5` is `50.0%`.
fn percent(rate: f64) -> String {
    format!("{:.1}%", rate * 100.0)
}

/// Every address in `html` a browser could fetch from elsewhere: each
/// `http://` or `https://` but the SVG namespace (a name, never fetched),
/// and each way to pull in a file (`src=`, `<link`, `@import`, `url(`).
fn outside_references(html: &str) -> Vec<String> {
    const SVG_NAMESPACE: &str = "http://www.w3.org/2000/svg";
    let lower = html.to_ascii_lowercase();
    let mut found: Vec<String> = ["http://", "https://"]
        .iter()
        .flat_map(|scheme| lower.match_indices(scheme).map(|(at, _)| at))
        .map(|at| {
            lower[at..]
                .split(|c: char| c.is_whitespace() || "\"'`)<>".contains(c))
                .next()
                .unwrap_or_default()
                .to_owned()
        })
        .filter(|address| address != SVG_NAMESPACE)
        .collect();
    found.extend(
        ["src=", "<link", "@import", "url("]
            .iter()
            .filter(|pull| lower.contains(*pull))
            .map(|pull| (*pull).to_owned()),
    );
    found
}

/// Screenshots the page at `width`x`height` into `target/tmp/dashboard/`,
/// and returns the file.
async fn screenshot(browser: &Path, service: SocketAddr, file: &str, size: (u32, u32)) -> PathBuf {
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard");
    std::fs::create_dir_all(&shots).unwrap();
    let shot = shots.join(file);
    let _ = std::fs::remove_file(&shot);
    let flags = [
        format!("--screenshot={}", shot.display()),
        format!("--window-size={},{}", size.0, size.1),
        "--hide-scrollbars".to_owned(),
    ];
    let url = format!("http://{service}/circuits");
    let browser = browser.to_owned();
    tokio::task::spawn_blocking(move || {
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        headless(&browser, &url, &flags)
    })
    .await
    .unwrap();
    let size = std::fs::metadata(&shot).map_or(0, |meta| meta.len());
    assert!(size > 1000, "no screenshot at {}", shot.display());
    shot
}

/// The served page loads nothing from elsewhere, and an open card's
/// `data-state` selects the open colour in its stylesheet.
fn assert_self_contained_and_styled(page: &str) {
    assert_eq!(
        outside_references(page),
        Vec::<String>::new(),
        "the page is self-contained: it loads nothing from anywhere"
    );
    let open_rule = page
        .find(r#".card[data-state="open"] {"#)
        .map(|at| &page[at..at + page[at..].find('}').unwrap()])
        .expect("the stylesheet styles open cards");
    assert!(
        open_rule.contains("--state-colour: var(--open)"),
        "{open_rule}"
    );
    assert!(page.contains("--open: #d64541"), "open is red");
}

/// The open card `open` of breaker `reported` (its health report), whose
/// configuration is `config`: the open style, its calls, rejections and
/// next trial as the health endpoint reports them, and a sparkline of
/// its calls.
fn assert_open_card(open: &str, reported: &Value, config: &Config) {
    assert_eq!(attribute(open, "data-state").as_deref(), Some("open"));
    assert_eq!(attribute(open, "class").as_deref(), Some("card"));
    assert!(
        open.contains(r#"<span class="state">open</span>"#),
        "{open}"
    );
    assert_eq!(
        fact(open, "calls"),
        reported["metrics"]["total_calls"].to_string()
    );
    assert_eq!(fact(open, "rejected"), "1", "{open}");
    assert_eq!(reported["metrics"]["rejected_calls"], 1);
    assert_eq!(
        fact(open, "next trial"),
        format!("in {}", reported["retry_after"].as_str().unwrap()),
    );
    assert_eq!(
        fact(open, "next trial"),
        format!("in {}s", config.recovery_timeout().as_secs()),
        "the manual clock has not moved"
    );
    let sparkline = element(open, "sparkline").expect("a sparkline");
    assert!(sparkline.starts_with("<svg"), "{sparkline}");
    assert!(
        element(open, "spark-calls").is_some(),
        "the sparkline draws calls once the page polled twice:\n{open}"
    );
}

/// The card `windowed` of a breaker with a failure rate threshold in
/// `config`, under it as `reported`: its failure rate against its
/// threshold, in words and as a bar with the threshold's mark.
fn assert_rate_card(windowed: &str, reported: &Value, config: &Config) {
    let threshold = config
        .failure_rate_threshold()
        .expect("the file gives `inventory` a failure rate threshold");
    let rate = reported["metrics"]["failure_rate"]
        .as_f64()
        .expect("a failure rate: `inventory` keeps a window");
    assert!(
        rate > 0.0 && rate < threshold,
        "the test means a closed card with failures: {rate} against {threshold}"
    );
    assert_eq!(
        fact(windowed, "failure rate"),
        format!("{} / {}", percent(rate), percent(threshold))
    );
    let fill = element(windowed, "rate-fill").expect("a failure rate bar");
    let filled = style_percent(fill, "width");
    assert!((filled - rate * 100.0).abs() < 0.01, "{fill}");
    let mark = element(windowed, "rate-threshold").expect("the threshold's mark");
    let marked = style_percent(mark, "left");
    assert!((marked - threshold * 100.0).abs() < 0.01, "{mark}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tripped_breaker_turns_its_card_open_first_and_back_after_recovery() {
    let browser = chromium();
    let addresses = axum_service::start(0).await.unwrap();
    let clock = on_a_manual_clock(&["quotes", "inventory"]);
    let (service, upstream) = (addresses.service, addresses.upstream);
    let (quotes, inventory) = (config_of("quotes"), config_of("inventory"));
    assert_eq!(json(service, "/quotes/1").await.0, 200);
    for _ in 0..2 {
        assert_eq!(request(service, "GET", "/inventory/1").await.0, 200);
    }

    let (status, _, page) = request(service, "GET", "/circuits").await;
    assert_eq!(status, 200);
    assert!(page.contains("<title>Circuits</title>"));
    assert_self_contained_and_styled(&page);

    let dom = dashboard_dom(browser.clone(), service).await;
    assert_eq!(
        cards(&dom),
        [
            ("inventory".to_owned(), "closed".to_owned()),
            ("quotes".to_owned(), "closed".to_owned()),
        ],
        "the page drew no cards from the health endpoint:\n{dom}"
    );

    // Trip `quotes` (then one call is rejected), and fail one call of
    // `inventory`, whose rate stays under its threshold.
    assert_eq!(request(upstream, "PUT", "/failure-rate/100").await.0, 200);
    for _ in 0..=quotes.failure_threshold() {
        let _ = json(service, "/quotes/1").await;
    }
    assert_eq!(request(service, "GET", "/inventory/1").await.0, 500);
    let (_, health) = json(service, "/health/circuits").await;
    let dom = dashboard_dom(browser.clone(), service).await;
    assert_eq!(outside_references(&dom), Vec::<String>::new());
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
    assert_open_card(card(&dom, "quotes"), circuit(&health, "quotes"), &quotes);
    assert_rate_card(
        card(&dom, "inventory"),
        circuit(&health, "inventory"),
        &inventory,
    );

    screenshot(&browser, service, "open-circuit.png", (1280, 720)).await;
    screenshot(&browser, service, "open-circuit-phone.png", (390, 844)).await;

    // Heal the upstream; once the open time has passed, a trial closes
    // it.
    assert_eq!(request(upstream, "PUT", "/failure-rate/0").await.0, 200);
    clock.advance(quotes.recovery_timeout());
    assert_eq!(json(service, "/quotes/1").await.1["source"], "upstream");
    let dom = dashboard_dom(browser, service).await;
    assert_eq!(state_of(&cards(&dom), "quotes").as_deref(), Some("closed"));
    assert!(dom.contains(r#"data-healthy="true""#));
    assert_eq!(
        attribute(card(&dom, "quotes"), "data-state").as_deref(),
        Some("closed")
    );
}
