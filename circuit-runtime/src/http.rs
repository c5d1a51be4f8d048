//! The operator's pages as tower services over `http` types (feature
//! `http`), so a service mounts them in axum, hyper or tonic without
//! copying a handler: [`HealthService`] for `/health/circuits`, and
//! [`DashboardService`], a live page of every breaker that follows it.
//!
//! ```
//! use circuit_runtime::http::HealthService;
//! use circuit_runtime::{registry, Config};
//! use tower::{Service, ServiceExt};
//!
//! # futures::executor::block_on(async {
//! registry().get_or_create("docs.http.payments", Config::default()).force_open();
//! let request = http::Request::get("/health/circuits?strict=true").body(()).unwrap();
//! let response = HealthService::new(registry()).oneshot(request).await.unwrap();
//! assert_eq!(response.status(), 503, "strict: an open circuit fails the probe");
//! assert!(response.body().starts_with(r#"{"healthy":false"#));
//! # });
//! ```
//!
//! In axum:
//!
//! ```text
//! Router::new()
//!     .route_service("/health/circuits", HealthService::new(registry()))
//!     .route_service("/circuits", DashboardService::new())
//! ```

use std::convert::Infallible;
use std::future::{ready, Ready};
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{header, HeaderValue, Request, Response, StatusCode};

use crate::Registry;

/// Answers any request with the registry's [`Health`](crate::Health) as
/// JSON.
///
/// The status is 200 even when a circuit is open, by default: an open
/// breaker is the breaker doing its job, and a readiness probe that failed
/// on it would keep away the very traffic whose trial calls close it.
/// With `?strict=true` an unhealthy registry answers 503, for probes that
/// alert rather than route.
#[derive(Clone, Copy, Debug)]
pub struct HealthService {
    registry: &'static Registry,
}

impl HealthService {
    /// Reports `registry`'s breakers; usually the global
    /// [`registry()`](crate::registry).
    pub fn new(registry: &'static Registry) -> Self {
        HealthService { registry }
    }
}

impl<B> tower_service::Service<Request<B>> for HealthService {
    type Response = Response<String>;
    type Error = Infallible;
    type Future = Ready<Result<Response<String>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let strict = request.uri().query().is_some_and(|query| {
            query
                .split('&')
                .any(|pair| pair == "strict=true" || pair == "strict")
        });
        ready(Ok(health_response(self.registry, strict)))
    }
}

/// `registry`'s health as an HTTP response: JSON, never cached, 200, or
/// 503 when `strict` and a circuit is open.
///
/// ```
/// let response = circuit_runtime::http::health_response(circuit_runtime::registry(), false);
/// assert_eq!(response.headers()["content-type"], "application/json");
/// ```
pub fn health_response(registry: &Registry, strict: bool) -> Response<String> {
    let health = registry.health();
    let status = if strict && !health.healthy {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let (status, body) = match serde_json::to_string(&health) {
        Ok(body) => (status, body),
        // Nothing in a health report fails to serialize; if it ever did,
        // the probe learns it rather than reading half a document.
        Err(err) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(r#"{{"error":"{}"}}"#, err.to_string().replace('"', "'")),
        ),
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The dashboard page, as the crate ships it.
const DASHBOARD: &str = include_str!("http/dashboard.html");

/// The attribute of the page that names the health endpoint it follows.
const HEALTH_ATTRIBUTE: &str = r#"data-health="/health/circuits""#;

/// A live page of every breaker: one self-contained HTML document (no
/// build step, no CDN, no framework) that polls the health endpoint every
/// second and draws each breaker as a card, open circuits first: its state
/// colour, failure rate against its threshold, calls, rejections, time
/// until the next trial, and a sparkline of its calls since the page
/// opened (up to five minutes: the health endpoint reports counters, not
/// history). It reads on a phone and on a wall screen.
///
/// ```
/// use circuit_runtime::http::DashboardService;
/// use tower::ServiceExt;
///
/// # futures::executor::block_on(async {
/// let request = http::Request::get("/circuits").body(()).unwrap();
/// let page = DashboardService::new().oneshot(request).await.unwrap();
/// assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
/// assert!(page.body().contains(r#"data-health="/health/circuits""#));
/// # });
/// ```
#[derive(Clone, Debug)]
pub struct DashboardService {
    page: Arc<str>,
}

impl DashboardService {
    /// The page, following the health endpoint at `/health/circuits`.
    #[allow(clippy::new_without_default)] // a service, built once
    pub fn new() -> Self {
        DashboardService {
            page: Arc::from(DASHBOARD),
        }
    }

    /// The page, following a [`HealthService`] mounted at `path` (a
    /// `?health=...` query on the page's own address overrides it too).
    ///
    /// ```
    /// let page = circuit_runtime::http::DashboardService::following("/ops/health");
    /// # let _ = page;
    /// ```
    pub fn following(path: &str) -> Self {
        let escaped = path
            .replace('&', "&amp;")
            .replace('"', "&quot;")
            .replace('<', "&lt;");
        DashboardService {
            page: Arc::from(DASHBOARD.replacen(
                HEALTH_ATTRIBUTE,
                &format!(r#"data-health="{escaped}""#),
                1,
            )),
        }
    }
}

impl<B> tower_service::Service<Request<B>> for DashboardService {
    type Response = Response<String>;
    type Error = Infallible;
    type Future = Ready<Result<Response<String>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<B>) -> Self::Future {
        let mut response = Response::new(self.page.to_string());
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        ready(Ok(response))
    }
}
