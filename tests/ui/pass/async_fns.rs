//! Async functions, async methods and `async fn` in trait impls keep their
//! signatures, compile without a warning and run on any executor.
#![deny(warnings)]
#![warn(clippy::pedantic)]

use circuit_runtime::{circuit_breaker, CircuitOpenError};

#[derive(Clone, Debug)]
pub enum FetchError {
    Down,
    Unavailable,
}

impl From<CircuitOpenError> for FetchError {
    fn from(_: CircuitOpenError) -> Self {
        FetchError::Unavailable
    }
}

#[allow(clippy::unused_async)]
async fn ready<T>(value: T) -> T {
    value
}

/// # Errors
///
/// When the quote service is down.
#[circuit_breaker(
    name = "pass.async.fetch",
    failure_threshold = 2,
    recovery_timeout = "30s"
)]
pub async fn fetch(id: u32) -> Result<u32, FetchError> {
    if id == 0 {
        return Err(FetchError::Down);
    }
    let doubled = ready(Ok::<_, FetchError>(id * 2)).await?;
    Ok(doubled)
}

#[circuit_breaker(name = "pass.async.fallback", fallback = cached, fallback_on = "any_error")]
async fn with_fallback(id: u32, label: String) -> Result<String, FetchError> {
    ready(()).await;
    if id == 0 {
        return Err(FetchError::Down);
    }
    Ok(format!("{label}{id}"))
}

#[allow(
    clippy::unused_async,
    clippy::unnecessary_wraps,
    clippy::needless_pass_by_value
)]
async fn cached(id: u32, label: String) -> Result<String, FetchError> {
    Ok(format!("cached {label}{id}"))
}

pub struct Service {
    prefix: String,
}

impl Service {
    #[circuit_breaker(name = "pass.async.method", fallback = Self::offline)]
    async fn get(&self, key: &str) -> Result<String, FetchError> {
        ready(()).await;
        Ok(format!("{}{key}", self.prefix))
    }

    #[allow(clippy::unused_async, clippy::unnecessary_wraps)]
    async fn offline(&self, key: &str) -> Result<String, FetchError> {
        Ok(format!("offline {key}"))
    }
}

pub trait Source {
    #[allow(async_fn_in_trait)]
    async fn pull(&mut self) -> Result<u32, FetchError>;
}

pub struct Counter(u32);

impl Source for Counter {
    #[circuit_breaker(name = "pass.async.trait_impl")]
    async fn pull(&mut self) -> Result<u32, FetchError> {
        self.0 += 1;
        ready(Ok(self.0)).await
    }
}

pub fn main() {
    futures::executor::block_on(async {
        assert_eq!(fetch(2).await.unwrap(), 4);
        assert_eq!(with_fallback(0, "q".to_owned()).await.unwrap(), "cached q0");
        let service = Service {
            prefix: "p:".to_owned(),
        };
        assert_eq!(service.get("k").await.unwrap(), "p:k");
        let mut counter = Counter(0);
        assert_eq!(counter.pull().await.unwrap(), 1);
    });
}
