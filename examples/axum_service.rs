//! A real service: an axum server whose routes call a flaky upstream
//! through breakers, with the health and metrics endpoints operators read.
//!
//! ```sh
//! cargo run --example axum_service        # PORT=8080 to choose the port
//! ```
//!
//! It starts two listeners on 127.0.0.1 and prints both addresses:
//! - the upstream, a stand-in for someone else's API, whose failure rate
//!   is switched with `curl -X PUT <upstream>/failure-rate/100` (or `/0`);
//! - the service:
//!   - `GET /quotes/{id}`: an `async fn` under `#[circuit_breaker]` with a
//!     fallback: each good quote is cached, and the fallback answers with
//!     the cached one (`"source": "cache"`) when the upstream fails or the
//!     breaker is open, or 503 when it has none;
//!   - `GET /inventory/{id}`: a route behind the tower layer, which
//!     answers 503 with `Retry-After` while its breaker is open;
//!   - `GET /health/circuits` (and `/health/circuit-breakers`): the
//!     registry's health as JSON; `?strict=true` answers 503 when a
//!     circuit is open;
//!   - `GET /metrics`: Prometheus text;
//!   - `GET /circuits`: the live dashboard, open it in a browser.
//!
//! The breakers' options come from `examples/axum_service.toml`.

use std::collections::HashMap;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use axum::error_handling::HandleErrorLayer;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use circuit_runtime::http::{DashboardService, HealthService};
use circuit_runtime::tower::{CircuitBreakerLayer, Classification};
use circuit_runtime::{circuit_breaker, registry, CallError};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde_json::json;
use tokio::net::TcpListener;
use tower::ServiceBuilder;

/// Where the service and its upstream listen.
#[derive(Clone, Copy, Debug)]
pub struct Addresses {
    pub service: SocketAddr,
    pub upstream: SocketAddr,
}

/// Starts the upstream and the service on 127.0.0.1 (the service on
/// `port`, 0 for any free one) and returns once both listen; they run on
/// the current tokio runtime until it shuts down.
///
/// # Errors
///
/// When the configuration file has a mistake, a metrics recorder is
/// installed already, or a listener cannot bind.
pub async fn start(port: u16) -> std::io::Result<Addresses> {
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/axum_service.toml");
    registry()
        .load_toml_file(config)
        .map_err(|err| std::io::Error::other(err.to_string()))?;
    let metrics = PrometheusBuilder::new()
        .install_recorder()
        .map_err(std::io::Error::other)?;

    let upstream = TcpListener::bind(("127.0.0.1", 0)).await?;
    let upstream_addr = upstream.local_addr()?;
    tokio::spawn(async move { axum::serve(upstream, flaky_upstream()).await });

    let service = TcpListener::bind(("127.0.0.1", port)).await?;
    let service_addr = service.local_addr()?;
    let app = app(Upstream::new(upstream_addr), metrics);
    tokio::spawn(async move { axum::serve(service, app).await });
    Ok(Addresses {
        service: service_addr,
        upstream: upstream_addr,
    })
}

/// The port the `PORT` variable asks for (`value`), or 0, any free one,
/// when it is not set.
///
/// # Errors
///
/// A sentence that names the variable and quotes what it holds, when that
/// is not a port number: a typo must not quietly move the service to a
/// port nobody knows.
pub fn port_from(value: Option<OsString>) -> Result<u16, String> {
    let Some(value) = value else {
        return Ok(0);
    };
    let expected = "PORT must be a port number from 0 to 65535 (0 for any free one)";
    let text = value
        .to_str()
        .ok_or_else(|| format!("{expected}, got {value:?}, which is not UTF-8"))?;
    text.parse()
        .map_err(|_| format!("{expected}, got `{text}`"))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port = match port_from(std::env::var_os("PORT")) {
        Ok(port) => port,
        Err(message) => {
            eprintln!("axum_service: {message}");
            std::process::exit(2);
        }
    };
    let addresses = start(port).await?;
    println!("service:  http://{}", addresses.service);
    println!("upstream: http://{}", addresses.upstream);
    println!(
        "try: curl -X PUT http://{}/failure-rate/100",
        addresses.upstream
    );
    println!("     curl http://{}/quotes/7", addresses.service);
    println!("     curl http://{}/health/circuits", addresses.service);
    println!("dashboard: http://{}/circuits", addresses.service);
    tokio::signal::ctrl_c().await
}

// ---- the service -------------------------------------------------------

fn app(upstream: Upstream, metrics: PrometheusHandle) -> Router {
    // The tower layer around a route: the upstream's 5xx answers count as
    // failures, and an open breaker becomes 503 with `Retry-After`.
    let inventory = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(
            |err: CallError<UpstreamError>| async move {
                match err {
                    CallError::Rejected(open) => {
                        let retry_after = open.retry_after_secs().unwrap_or(1).to_string();
                        let headers = [(header::RETRY_AFTER, retry_after)];
                        (StatusCode::SERVICE_UNAVAILABLE, headers, open.to_string()).into_response()
                    }
                    CallError::Failed(err) => (StatusCode::BAD_GATEWAY, err.0).into_response(),
                }
            },
        ))
        .layer(CircuitBreakerLayer::new("inventory").classify(
            |outcome: Result<&Response, &UpstreamError>| match outcome {
                Ok(response) if response.status().is_server_error() => Classification::Failure,
                Ok(_) => Classification::Success,
                Err(_) => Classification::Failure,
            },
        ))
        .service_fn({
            let upstream = upstream.clone();
            move |request: axum::extract::Request| {
                let upstream = upstream.clone();
                async move { upstream.inventory(request.uri().path()).await }
            }
        });

    Router::new()
        .route("/quotes/{id}", get(quote))
        .with_state(Quotes::new(upstream))
        .route_service("/inventory/{id}", inventory)
        .route_service("/health/circuits", HealthService::new(registry()))
        .route_service("/health/circuit-breakers", HealthService::new(registry()))
        .route_service("/circuits", DashboardService::new())
        .route(
            "/metrics",
            get(move || async move {
                registry().publish_metrics();
                metrics.render()
            }),
        )
}

async fn quote(State(quotes): State<Quotes>, Path(id): Path<u32>) -> Response {
    match fetch_quote(&quotes, id).await {
        Ok(Quote { price, source }) => {
            Json(json!({ "id": id, "price": price, "source": source })).into_response()
        }
        Err(err) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "id": id, "error": err.0 })),
        )
            .into_response(),
    }
}

/// The upstream's price, cached as it arrives; or the cached one when the
/// call fails or the breaker is open.
#[circuit_breaker(name = "quotes", fallback = cached_quote, fallback_on = "any_error")]
async fn fetch_quote(quotes: &Quotes, id: u32) -> Result<Quote, UpstreamError> {
    let price = quotes.upstream.quote(id).await?;
    quotes.remember(id, price);
    Ok(Quote {
        price,
        source: "upstream",
    })
}

#[allow(clippy::unused_async)] // a fallback of an `async fn` is one too
async fn cached_quote(quotes: &Quotes, id: u32) -> Result<Quote, UpstreamError> {
    quotes
        .cached(id)
        .map(|price| Quote {
            price,
            source: "cache",
        })
        .ok_or_else(|| {
            UpstreamError(format!(
                "no quote for {id}: the upstream is down and none is cached"
            ))
        })
}

/// A price, and where it came from: `"upstream"` or `"cache"`.
#[derive(Clone, Copy, Debug)]
struct Quote {
    price: f64,
    source: &'static str,
}

/// The quotes route's state: the upstream, and the last good price of
/// each quote, which the fallback serves.
#[derive(Clone)]
struct Quotes {
    upstream: Upstream,
    cache: Arc<Mutex<HashMap<u32, f64>>>,
}

impl Quotes {
    /// Quotes kept at most: ids come from the request path, so an
    /// unbounded cache would grow with whatever clients ask for.
    const CACHED: usize = 1024;

    fn new(upstream: Upstream) -> Self {
        Quotes {
            upstream,
            cache: Arc::default(),
        }
    }

    fn remember(&self, id: u32, price: f64) {
        // A panic elsewhere while the lock was held leaves a map of
        // prices, each whole: still good to serve.
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= Self::CACHED && !cache.contains_key(&id) {
            if let Some(&evicted) = cache.keys().next() {
                cache.remove(&evicted);
            }
        }
        cache.insert(id, price);
    }

    fn cached(&self, id: u32) -> Option<f64> {
        let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        cache.get(&id).copied()
    }
}

/// An HTTP client of the upstream.
#[derive(Clone)]
struct Upstream {
    client: Client<HttpConnector, Empty<Bytes>>,
    base: String,
}

/// The upstream failed: a transport error, or an answer that is not 200.
#[derive(Debug)]
struct UpstreamError(String);

impl Upstream {
    fn new(addr: SocketAddr) -> Self {
        Upstream {
            client: Client::builder(TokioExecutor::new()).build_http(),
            base: format!("http://{addr}"),
        }
    }

    async fn quote(&self, id: u32) -> Result<f64, UpstreamError> {
        let (status, body) = self.get(&format!("/quotes/{id}")).await?;
        if status != StatusCode::OK {
            return Err(UpstreamError(format!("upstream answered {status}")));
        }
        body.parse()
            .map_err(|_| UpstreamError(format!("upstream sent `{body}`")))
    }

    /// The upstream's answer as it is, its 5xx included: the layer's
    /// classifier judges it.
    async fn inventory(&self, path: &str) -> Result<Response, UpstreamError> {
        let (status, body) = self.get(path).await?;
        Ok((status, body).into_response())
    }

    async fn get(&self, path: &str) -> Result<(StatusCode, String), UpstreamError> {
        let uri = format!("{}{path}", self.base)
            .parse()
            .map_err(|err| UpstreamError(format!("{err}")))?;
        let response = self
            .client
            .get(uri)
            .await
            .map_err(|err| UpstreamError(format!("upstream unreachable: {err}")))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|err| UpstreamError(format!("upstream body: {err}")))?
            .to_bytes();
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }
}

// ---- the flaky upstream ------------------------------------------------

/// How often the upstream fails, in percent, and how many requests it saw.
#[derive(Default)]
struct Flakiness {
    failure_percent: AtomicU32,
    requests: AtomicU64,
}

impl Flakiness {
    /// Whether this request fails: exactly `failure_percent` of every
    /// hundred, spread evenly, so the demo is reproducible.
    fn fails(&self) -> bool {
        let request = self.requests.fetch_add(1, Ordering::Relaxed);
        let percent = u64::from(self.failure_percent.load(Ordering::Relaxed));
        (request * percent) % 100 + percent > 99 && percent > 0
    }
}

fn flaky_upstream() -> Router {
    let flakiness = Arc::new(Flakiness::default());
    let answer = |flakiness: Arc<Flakiness>, body: String| {
        if flakiness.fails() {
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "upstream failure".to_owned(),
            )
        } else {
            (StatusCode::OK, body)
        }
    };
    Router::new()
        .route(
            "/quotes/{id}",
            get(
                move |State(flakiness): State<Arc<Flakiness>>, Path(id): Path<u32>| async move {
                    answer(flakiness, format!("{}", 100.0 + f64::from(id) / 100.0))
                },
            ),
        )
        .route(
            "/inventory/{id}",
            get(
                move |State(flakiness): State<Arc<Flakiness>>, Path(id): Path<u32>| async move {
                    answer(flakiness, format!("{}", id * 3))
                },
            ),
        )
        .route(
            "/failure-rate/{percent}",
            put(
                |State(flakiness): State<Arc<Flakiness>>, Path(percent): Path<u32>| async move {
                    flakiness
                        .failure_percent
                        .store(percent.min(100), Ordering::Relaxed);
                    format!("failing {}% of requests\n", percent.min(100))
                },
            ),
        )
        .with_state(flakiness)
}
