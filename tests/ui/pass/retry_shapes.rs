//! The shapes `#[retry]` accepts, alone and above `#[circuit_breaker]`.

use std::time::Duration;

use circuit_runtime::{circuit_breaker, retry, CircuitOpenError};

#[derive(Debug)]
pub struct ApiError;

impl From<CircuitOpenError> for ApiError {
    fn from(_: CircuitOpenError) -> Self {
        ApiError
    }
}

async fn nap(_: Duration) {}

fn is_transient(_: &ApiError) -> bool {
    true
}

pub struct Client {
    base: String,
}

impl Client {
    #[retry(max_retries = 2, base_delay = "10ms", max_delay = "1s", exponential_base = 3, jitter = true)]
    #[circuit_breaker(name = "pass.client")]
    pub fn get(&self, path: &str, mut attempt: u32) -> Result<String, ApiError> {
        attempt += 1;
        Ok(format!("{}{path}{attempt}", self.base))
    }

    #[retry(jitter = "decorrelated", max_elapsed = "30s", retry_if = is_transient, sleeper = nap)]
    pub async fn get_async(&self, id: u64) -> Result<u64, ApiError> {
        Ok(id)
    }

    #[retry(budget = "pass.budget", base_delay = 0, max_delay = 5)]
    pub fn put(&mut self, body: Vec<u8>, log: &mut Vec<usize>) -> Result<(), ApiError> {
        log.push(body.len());
        self.base.push('/');
        Ok(())
    }
}

#[retry(max_retries = 0, crate = "circuit_runtime")]
#[circuit_breaker(name = "pass.fallback", fallback = cached, fallback_on = "any_error")]
fn with_fallback(id: u32) -> Result<u32, ApiError> {
    Ok(id)
}

#[allow(clippy::unnecessary_wraps)]
fn cached(id: u32) -> Result<u32, ApiError> {
    Ok(id)
}

#[retry(max_retries = 1)]
fn opaque() -> Result<impl std::fmt::Display, ApiError> {
    Ok(1)
}

#[retry(max_retries = 1, sleeper = nap)]
async fn opaque_async() -> Result<impl std::fmt::Display, std::io::Error> {
    Ok(1)
}

fn main() {
    let _ = (opaque(), opaque_async());
    let mut client = Client { base: "http://".to_owned() };
    let _ = client.get("/", 0);
    let _ = client.get_async(1);
    let _ = client.put(vec![1], &mut Vec::new());
    let _ = with_fallback(1);
}
