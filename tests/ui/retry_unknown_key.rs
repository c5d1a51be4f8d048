use circuit_runtime::retry;

#[retry(max_retry = 3)]
fn fetch() -> Result<u32, String> {
    Ok(1)
}

#[retry(colour = "red")]
fn paint() -> Result<u32, String> {
    Ok(1)
}

fn main() {
    let _ = (fetch(), paint());
}
