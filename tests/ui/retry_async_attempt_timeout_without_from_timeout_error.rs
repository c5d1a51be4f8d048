use std::time::Duration;

use circuit_runtime::retry::{retry_async, retry_async_if, RetryConfig};

#[derive(Debug)]
struct ApiError;

async fn call() -> Result<u32, ApiError> {
    Ok(1)
}

fn main() {
    let config = RetryConfig::builder()
        .attempt_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let sleeper = |_: Duration| std::future::ready(());
    let _ = retry_async_if(&config, sleeper, |_: &ApiError| true, call);
    // Without the limit, any error type will do.
    let _ = retry_async_if(&RetryConfig::default(), sleeper, |_: &ApiError| true, call);
    let _ = retry_async(&config, sleeper, || async { Ok::<_, std::io::Error>(1) });
}
