use circuit_runtime::retry;

#[retry(max_retries = 2)]
fn count() -> u32 {
    1
}

#[retry]
struct NotAFunction;

fn main() {
    let _ = count();
}
