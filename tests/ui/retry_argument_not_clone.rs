use circuit_runtime::retry;

struct Connection;

#[retry]
fn send(connection: Connection) -> Result<(), String> {
    let _ = connection;
    Ok(())
}

fn main() {
    let _ = send(Connection);
}
