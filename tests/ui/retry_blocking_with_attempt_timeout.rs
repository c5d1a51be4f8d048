use std::time::Duration;

use circuit_runtime::retry::{retry, RetryConfig};

fn main() {
    // A blocking call cannot be cut off: `retry` takes no `attempt_timeout`.
    let config = RetryConfig::builder()
        .attempt_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let _ = retry(&config, || Ok::<_, std::io::Error>(1));
}
