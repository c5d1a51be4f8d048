use std::time::Duration;

use circuit_runtime::retry;

async fn nap(_: Duration) {}

struct Client;

impl Client {
    #[retry]
    fn consume(self) -> Result<u32, String> {
        Ok(1)
    }

    #[retry(sleeper = nap)]
    async fn exclusive(&mut self, buffer: &mut Vec<u8>) -> Result<u32, String> {
        buffer.push(1);
        Ok(1)
    }
}

#[retry]
fn pattern((a, b): (u32, u32)) -> Result<u32, String> {
    Ok(a + b)
}

fn main() {
    let _ = (Client.consume(), pattern((1, 2)));
}
