use circuit_runtime::retry;

#[retry(attempt_timeout = "2s")]
fn fetch() -> Result<u32, String> {
    Ok(1)
}

fn main() {
    let _ = fetch();
}
