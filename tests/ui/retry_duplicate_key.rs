use circuit_runtime::retry;

#[retry(max_retries = 3, max_retries = 5)]
fn fetch() -> Result<u32, String> {
    Ok(1)
}

fn main() {
    let _ = fetch();
}
