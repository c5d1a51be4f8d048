//! Circuit breakers for Rust services: stop a failing dependency from
//! dragging your service down, in sync or async code, on any executor.
//!
//! A breaker wraps calls to one dependency. While the dependency is healthy
//! (**closed**) every call runs. After `failure_threshold` failures in a row,
//! or when a failure-rate rule fires, it **opens**: calls fail fast with
//! [`CircuitOpenError`] instead of piling up on a dead service. After
//! `recovery_timeout` it goes **half-open** and lets a few trial calls
//! through; their successes close it again, a failure reopens it.
//!
//! # Quickstart
//!
//! ```
//! use std::time::Duration;
//! use circuit_runtime::{registry, CallError, Config, State};
//!
//! fn fetch_quote(id: u32) -> Result<f64, std::io::Error> {
//!     Err(std::io::Error::other(format!("quote {id}: connection refused")))
//! }
//!
//! let breaker = registry().get_or_create(
//!     "quotes",
//!     Config::builder()
//!         .failure_threshold(3)
//!         .recovery_timeout(Duration::from_secs(30))
//!         .build()?,
//! );
//!
//! for id in 0..3 {
//!     assert!(matches!(breaker.call(|| fetch_quote(id)), Err(CallError::Failed(_))));
//! }
//! assert_eq!(breaker.state(), State::Open);
//!
//! match breaker.call(|| fetch_quote(4)) {
//!     Err(CallError::Rejected(open)) => println!("{open}"), // ... retry in 30.0s
//!     other => unreachable!("{other:?}"),
//! }
//! assert_eq!(registry().open_circuits(), ["quotes"]);
//! # Ok::<(), circuit_runtime::ConfigError>(())
//! ```
//!
//! # Where to go next
//!
//! - [`CircuitBreaker`]: `call`, `call_with`, `call_async`, and the two-step
//!   [`try_acquire`](CircuitBreaker::try_acquire) / [`Permit`].
//! - [`Config`]: every option with its default and range.
//! - [`registry()`]: named breakers shared by the whole program, with
//!   [`health`](Registry::health) for a `/health/circuits` endpoint and
//!   [`on_event`](Registry::on_event) observers of every [`Event`].
//! - Integrations, each an optional feature: `tracing` logs every event,
//!   `metrics` publishes counters, states, rates and durations through the
//!   `metrics` facade (`Registry::publish_metrics`), `serde` serializes
//!   snapshots, health and configurations.
//! - [`Registry::configure`] and [`CircuitBreaker::reconfigure`]: change a
//!   running breaker's options in place; with the `toml` feature,
//!   `Registry::load_toml_file` reads them from a file, and with `watch`,
//!   `Registry::watch_toml_file` applies its edits as they happen.
//! - [`ManualClock`]: test timeouts without sleeping.
#![deny(unsafe_code)]

mod append_only;
mod breaker;
mod cell;
mod clock;
mod config;
mod error;
mod events;
mod fallback;
#[cfg(feature = "http")]
pub mod http;
mod keyed;
mod metrics;
mod names;
mod policy;
mod registry;
pub mod retry;
#[cfg(feature = "serde")]
mod serialize;
mod sleep;
mod sync;
mod tagged;
mod telemetry;
#[cfg(feature = "tower")]
pub mod tower;
mod window;

pub use breaker::permit::Permit;
pub use breaker::{CallFuture, CircuitBreaker, State, TimedCallFuture};
pub use clock::ManualClock;
#[cfg(feature = "toml")]
pub use config::file::{ConfigFileError, FileProblem};
#[cfg(feature = "watch")]
pub use config::reload::{WatchGuard, DEFAULT_DEBOUNCE};
pub use config::{Config, ConfigBuilder, MAX_TRIAL_CALLS, MAX_WINDOW_SIZE};
pub use error::{CallError, CircuitOpenError, ConfigError, TimeoutError};
#[cfg(feature = "toml")]
pub use events::Reload;
pub use events::{
    Event, FallbackReason, FallbackRun, KeyOverflow, Reconfiguration, RetryAttempt, SlowCall,
    Transition, TransitionCause,
};
pub use fallback::FallbackCause;
pub use keyed::{KeyLimits, KeyedBreakers, DEFAULT_MAX_KEYS, MAX_KEY_LEN};
pub use metrics::{Metrics, RetryCalls};
pub use registry::{registry, Conflict, Health, Registry, Snapshot};
#[cfg(feature = "metrics")]
pub use telemetry::facade::{set_metric_prefix, MetricPrefixError, MetricsPublisher};

/// Puts a function behind a named breaker of the global [`registry()`].
///
/// The function keeps its exact signature; it must return a `Result` (any
/// alias of it). Each call site caches its breaker on first use, so after
/// that a call hashes no name and takes no lock. Without a `fallback`, a
/// rejected call returns `Err(E::from(CircuitOpenError))`, so the error type
/// needs `From<CircuitOpenError>`. A panic in the body counts as a failure;
/// an `async fn` dropped before it finishes gives back its half-open slot.
///
/// Keys, all optional (option values are checked at compile time, with the
/// ranges of [`ConfigError`]):
///
/// | key | default | meaning |
/// |---|---|---|
/// | `name = "quotes"` | the function's path (a method's: its type's path and name; in a trait's default method, each implementing type's) | the registry name; call sites sharing a name share a breaker |
/// | `failure_threshold`, `success_threshold`, `half_open_max_calls`, `window_size`, `minimum_calls`, `max_concurrent_calls` | as [`Config::default`] | integers, as the [`ConfigBuilder`] methods of the same name |
/// | `failure_rate_threshold`, `slow_call_rate_threshold`, `recovery_backoff`, `jitter` | as [`Config::default`] | numbers |
/// | `recovery_timeout`, `window_duration`, `slow_call_duration`, `max_recovery_timeout`, `half_open_timeout` | as [`Config::default`] | `"250ms"`, `"30s"`, `"2m"`, `"1h"`, `"1m30s"`, or an integer of seconds |
/// | `fallback = path` | none | called with the same arguments (receiver first) when the breaker rejects the call; for an `async fn`, an `async fn` |
/// | `fallback_on = "any_error"` | `"rejection"` | also send failed calls to the fallback (their arguments are cloned before the call) |
/// | `is_failure = path` | every error | `fn(&E) -> bool`; errors it returns `false` for are ignored |
/// | `config = path` | none | a `fn() -> Config` used instead of the option keys |
/// | `timeout = "2s"`, `sleeper = path` | none | on an `async fn`: cut off a call still running after `timeout`, measured by `sleeper` (`tokio::time::sleep`, or any `Fn(Duration) -> impl Future`); it counts as a failure and a slow call, and returns `Err(E::from(TimeoutError))` |
/// | `crate = "path"` | `"::circuit_runtime"` | where the runtime is reached from, for crates that re-export it |
///
/// ```
/// use circuit_runtime::{circuit_breaker, registry, CircuitOpenError, State};
///
/// #[derive(Debug)]
/// enum ApiError { Down, Unavailable }
/// impl From<CircuitOpenError> for ApiError {
///     fn from(_: CircuitOpenError) -> Self { ApiError::Unavailable }
/// }
///
/// #[circuit_breaker(name = "docs.quotes", failure_threshold = 2, recovery_timeout = "30s")]
/// fn fetch_quote(id: u32) -> Result<f64, ApiError> {
///     Err(ApiError::Down) // the quote service is down
/// }
///
/// #[circuit_breaker(name = "docs.prices", failure_threshold = 1, fallback = cached_price)]
/// fn fetch_price(id: u32) -> Result<f64, ApiError> {
///     Err(ApiError::Down)
/// }
/// fn cached_price(id: u32) -> Result<f64, ApiError> {
///     Ok(f64::from(id) * 0.5)
/// }
///
/// assert!(matches!(fetch_quote(1), Err(ApiError::Down)));
/// assert!(matches!(fetch_quote(2), Err(ApiError::Down)));
/// assert_eq!(registry().get("docs.quotes").unwrap().state(), State::Open);
/// assert!(matches!(fetch_quote(3), Err(ApiError::Unavailable)), "rejected without running");
///
/// assert!(fetch_price(4).is_err()); // trips the breaker
/// assert_eq!(fetch_price(4).unwrap(), 2.0); // rejected: the fallback answers
/// ```
pub use circuit_macros::circuit_breaker;

/// Retries a function whose attempt failed, as [`retry::retry`] does, with
/// the function's body as the attempt.
///
/// Written above `#[circuit_breaker]`, it retries around the breaker:
/// every attempt goes through the breaker and is recorded by it (retries
/// are counted in [`Metrics::retry_attempts`]), a rejection ends the
/// retries at once and goes to the breaker's `fallback` (or becomes the
/// error, as without retries), and with `fallback_on = "any_error"` the
/// fallback runs once the retries are spent.
///
/// Without `retry_if`, an error type that implements
/// [`Classify`](retry::Classify) is retried unless `Permanent`; any other
/// error is retried (so is an error type that is a generic parameter: the
/// attribute cannot see its classification; give it a `retry_if`). Each
/// attempt gets its own copy of the arguments taken by value (they must be
/// `Clone`).
///
/// Keys, all optional but `sleeper` on an `async fn` (values are checked
/// at compile time):
///
/// | key | default | meaning |
/// |---|---|---|
/// | `max_retries = 3` | 3 | retries after the first attempt, 0 to 1000 |
/// | `base_delay = "100ms"` | `"1s"` | the delay before the first retry |
/// | `max_delay = "5s"` | `"60s"` | the longest delay, jitter and `retry_after` hints included |
/// | `exponential_base = 2.0` | 2.0 | what each delay is multiplied by, at least 1.0 |
/// | `jitter = "full"` | `"full"` | `"none"`, `"full"`, `"equal"`, `"decorrelated"`, or `true`/`false` |
/// | `max_elapsed = "30s"` | none | the most time attempts and delays take together |
/// | `attempt_timeout = "2s"` | none | on an `async fn`: cut off each attempt still running after this, measured by `sleeper`, as a failure with `E::from(TimeoutError)` (the `timeout` of a `#[circuit_breaker]` below does the same through the breaker) |
/// | `retry_if = path` | by [`Classify`](retry::Classify) | `fn(&E) -> bool`: which errors to retry |
/// | `budget = "payments"` | none | the [`RetryBudget`](retry::RetryBudget) of that name, shared by every call site naming it |
/// | `sleeper = path` | required on an `async fn` | how to wait: `tokio::time::sleep`, or any `Fn(Duration) -> impl Future` |
/// | `crate = "path"` | `"::circuit_runtime"` | where the runtime is reached from |
///
/// ```
/// use circuit_runtime::{circuit_breaker, registry, retry, CircuitOpenError};
///
/// #[derive(Debug)]
/// enum ApiError { Flaky, Unavailable }
/// impl From<CircuitOpenError> for ApiError {
///     fn from(_: CircuitOpenError) -> Self { ApiError::Unavailable }
/// }
///
/// static CALLS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
///
/// #[retry(max_retries = 3, base_delay = "0s")] // a real service waits longer
/// #[circuit_breaker(name = "docs.retried")]
/// fn fetch(id: u32) -> Result<u32, ApiError> {
///     if CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < 2 {
///         Err(ApiError::Flaky)
///     } else {
///         Ok(id)
///     }
/// }
///
/// assert_eq!(fetch(7).unwrap(), 7);
/// let metrics = registry().get("docs.retried").unwrap().metrics();
/// assert_eq!((metrics.failed_calls, metrics.successful_calls, metrics.retry_attempts), (2, 1, 2));
/// ```
pub use circuit_macros::retry;

/// What code generated by `#[circuit_breaker]` calls. Not public API: it
/// may change in any release.
#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;
