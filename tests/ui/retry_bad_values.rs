use circuit_runtime::retry;

#[retry(base_delay = "10", jitter = "sometimes", max_retries = "3", budget = "")]
fn fetch() -> Result<u32, String> {
    Ok(1)
}

fn main() {
    let _ = fetch();
}
