//! Free functions of every shape keep their signatures and compile without
//! a warning.
#![deny(warnings)]
#![warn(clippy::pedantic)]

use std::fmt::Display;
use std::io;

use circuit_runtime::{circuit_breaker, CircuitOpenError, Config};

#[derive(Debug)]
pub enum ApiError {
    Parse(std::num::ParseIntError),
    Unavailable(CircuitOpenError),
}

impl Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::Parse(err) => write!(f, "not a number: {err}"),
            ApiError::Unavailable(open) => open.fmt(f),
        }
    }
}

impl From<CircuitOpenError> for ApiError {
    fn from(open: CircuitOpenError) -> Self {
        ApiError::Unavailable(open)
    }
}

impl From<std::num::ParseIntError> for ApiError {
    fn from(err: std::num::ParseIntError) -> Self {
        ApiError::Parse(err)
    }
}

/// No keys: the breaker is named after the function's path.
#[circuit_breaker]
fn defaults() -> Result<(), ApiError> {
    Ok(())
}

/// `?` and an early `return` behave as in the unannotated function.
///
/// # Errors
///
/// When `text` is not a number.
#[circuit_breaker(
    name = "pass.free.parse",
    failure_threshold = 3,
    recovery_timeout = "250ms"
)]
#[inline]
pub fn parse(text: &str) -> Result<u32, ApiError> {
    if text.is_empty() {
        return Ok(0);
    }
    let value: u32 = text.trim().parse()?;
    Ok(value * 2)
}

/// A `Result` alias works: failure is detected by a trait, not by name.
#[circuit_breaker(name = "pass.free.io")]
pub(crate) fn read(path: &str) -> io::Result<String> {
    Err(io::Error::new(io::ErrorKind::NotFound, path.to_owned()))
}

/// Every option key at once.
#[circuit_breaker(
    name = "pass.free.every_key",
    failure_threshold = 5,
    success_threshold = 2,
    half_open_max_calls = 2,
    failure_rate_threshold = 0.5,
    window_size = 20,
    minimum_calls = 10,
    slow_call_duration = "2s",
    slow_call_rate_threshold = 1,
    recovery_timeout = 30,
    max_recovery_timeout = "1h",
    recovery_backoff = 2.0,
    jitter = 0.1,
    half_open_timeout = "2m"
)]
fn every_key(mut attempts: u32) -> Result<u32, ApiError> {
    attempts += 1;
    Ok(attempts)
}

/// A time window instead of a count window.
#[circuit_breaker(window_duration = "10s", failure_rate_threshold = 0.25)]
fn time_window() -> Result<(), ApiError> {
    Ok(())
}

fn quotes_config() -> Config {
    Config::builder()
        .failure_threshold(2)
        .build()
        .expect("a valid configuration")
}

/// `config = path` instead of option keys.
#[circuit_breaker(config = quotes_config)]
fn configured() -> Result<(), ApiError> {
    Ok(())
}

fn is_transient(err: &ApiError) -> bool {
    matches!(err, ApiError::Unavailable(_))
}

/// `is_failure` classifies errors.
#[circuit_breaker(is_failure = is_transient)]
fn classified() -> Result<(), ApiError> {
    Ok(())
}

/// Lifetimes, type and const parameters, a where clause, `impl Trait`
/// arguments and an `impl Trait` inside the returned `Result`.
#[circuit_breaker(name = "pass.free.generic")]
fn generic<'a, T, const N: usize>(
    items: &'a [T; N],
    label: impl Display,
) -> Result<(&'a T, impl Display), ApiError>
where
    T: Clone + 'a,
{
    let first = items
        .first()
        .ok_or_else(|| "x".parse::<u32>().unwrap_err())?;
    Ok((first, format!("{label}: {N}")))
}

/// `unsafe fn` stays unsafe, and its body stays an unsafe context: the
/// dereference below needs no `unsafe` block (the 2021 edition allows
/// unsafe operations in an `unsafe fn` body), so it would not compile had
/// the expansion moved the body out of the function's unsafety.
///
/// # Safety
///
/// `pointer` must be valid for reads.
#[circuit_breaker(name = "pass.free.unsafe")]
unsafe fn read_raw(pointer: *const u32) -> Result<u32, ApiError> {
    Ok(*pointer)
}

#[allow(clippy::unnecessary_wraps)]
fn cached(id: u32) -> Result<u32, ApiError> {
    Ok(id)
}

/// A fallback answers rejected calls.
#[circuit_breaker(name = "pass.free.fallback", fallback = cached)]
fn with_fallback(id: u32) -> Result<u32, ApiError> {
    Ok(id + 1)
}

/// A fallback that also answers failures: the arguments are cloned.
#[circuit_breaker(name = "pass.free.any_error", fallback = cached_text, fallback_on = "any_error")]
fn any_error(text: String, scale: &mut u32) -> Result<u32, ApiError> {
    *scale += 1;
    Ok(text.parse::<u32>()? * *scale)
}

#[allow(clippy::unnecessary_wraps, clippy::needless_pass_by_value)]
fn cached_text(text: String, scale: &mut u32) -> Result<u32, ApiError> {
    Ok(u32::try_from(text.len()).unwrap_or(0) * *scale)
}

/// A compound duration, from the largest unit down.
#[circuit_breaker(name = "pass.free.compound", recovery_timeout = "1m30s")]
fn compound_duration() -> Result<(), ApiError> {
    Ok(())
}

/// The user's own inline attribute decides: the attribute adds no second
/// one (rustc rejects two under `deny(warnings)`).
#[circuit_breaker(name = "pass.free.never_inlined")]
#[inline(never)]
fn never_inlined() -> Result<(), ApiError> {
    Ok(())
}

/// Every count option at the largest value it accepts.
#[circuit_breaker(
    name = "pass.free.limits",
    failure_threshold = 4_294_967_295,
    success_threshold = 65535,
    half_open_max_calls = 65535,
    window_size = 1_000_000,
    minimum_calls = 1_000_000,
    failure_rate_threshold = 1.0
)]
fn at_the_limits() -> Result<(), ApiError> {
    Ok(())
}

pub fn main() {
    defaults().unwrap();
    at_the_limits().unwrap();
    compound_duration().unwrap();
    never_inlined().unwrap();
    let compound = circuit_runtime::registry()
        .get("pass.free.compound")
        .unwrap();
    assert_eq!(
        compound.config().recovery_timeout(),
        std::time::Duration::from_secs(90)
    );
    let limits = circuit_runtime::registry().get("pass.free.limits").unwrap();
    assert_eq!(limits.config().success_threshold(), 65535);
    assert_eq!(limits.config().window_size(), Some(1_000_000));
    assert_eq!(parse("21").unwrap(), 42);
    assert!(read("missing").is_err());
    assert_eq!(every_key(1).unwrap(), 2);
    time_window().unwrap();
    configured().unwrap();
    classified().unwrap();
    let (first, label) = generic(&[7, 8], "items").unwrap();
    assert_eq!((*first, label.to_string()), (7, "items: 2".to_owned()));
    // SAFETY: a reference is valid for reads.
    #[allow(unsafe_code)]
    let raw = unsafe { read_raw(&5) };
    assert_eq!(raw.unwrap(), 5);
    assert_eq!(with_fallback(1).unwrap(), 2);
    let mut scale = 1;
    assert_eq!(any_error("abc".to_owned(), &mut scale).unwrap(), 6);
}
