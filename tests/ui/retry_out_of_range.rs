use circuit_runtime::retry;

#[retry(max_retries = 5000)]
fn many() -> Result<u32, String> {
    Ok(1)
}

#[retry(exponential_base = 0.5)]
fn shrinking() -> Result<u32, String> {
    Ok(1)
}

#[retry(max_elapsed = "0s")]
fn no_time() -> Result<u32, String> {
    Ok(1)
}

fn main() {
    let _ = (many(), shrinking(), no_time());
}
