use circuit_runtime::retry;

#[retry(base_delay = "10s", max_delay = "1s")]
fn explicit() -> Result<u32, String> {
    Ok(1)
}

#[retry(base_delay = "2m")]
fn past_the_default() -> Result<u32, String> {
    Ok(1)
}

fn main() {
    let _ = (explicit(), past_the_default());
}
