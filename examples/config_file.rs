//! Breaker options from a file, changed while the program runs.
//!
//! The program loads `config_file.toml` (beside this file) into the
//! registry and watches it; a protected call then runs under the file's
//! options. It edits the file, as an operator would, and the running
//! breaker picks the change up; then it makes a mistake in the file, which
//! is reported and changes nothing.
//!
//! Run it with `cargo run --example config_file`. The file it edits is a
//! copy in a temporary directory: the one beside this file stays as it is.

use std::sync::mpsc;
use std::time::Duration;

use circuit_runtime::{circuit_breaker, registry, CircuitOpenError, Reload};

#[derive(Debug)]
enum DbError {
    Timeout,
    Unavailable(CircuitOpenError),
}

impl From<CircuitOpenError> for DbError {
    fn from(open: CircuitOpenError) -> Self {
        DbError::Unavailable(open)
    }
}

/// The attribute's own options are the code's defaults: the file wins over
/// them for this name.
#[circuit_breaker(name = "orders_db", failure_threshold = 10)]
fn load_order(id: u32) -> Result<String, DbError> {
    if id % 2 == 0 {
        Ok(format!("order {id}"))
    } else {
        Err(DbError::Timeout)
    }
}

fn show(when: &str) {
    let breaker = registry().get("orders_db").expect("used by now");
    let config = breaker.config();
    println!(
        "{when}: failure_threshold = {}, success_threshold = {}, recovery_timeout = {:?}, state = {}",
        config.failure_threshold(),
        config.success_threshold(),
        config.recovery_timeout(),
        breaker.state()
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("circuit-config-example-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("config_file.toml");
    let original = include_str!("config_file.toml");
    std::fs::write(&file, original)?;

    let (reloaded, reloads) = mpsc::channel::<Reload>();
    registry().on_reload(move |reload| {
        let _ = reloaded.send(reload.clone());
    });
    let watch = registry().watch_toml_file(&file)?;
    reloads.recv()?; // the first load
    println!("watching {}", file.display());

    println!("{:?}", load_order(2));
    show("from the file");

    // An operator lowers the threshold: the running breaker follows.
    std::fs::write(
        &file,
        original.replace("failure_threshold = 5", "failure_threshold = 2"),
    )?;
    let reload = reloads.recv_timeout(Duration::from_secs(10))?;
    println!("reloaded, changed: {:?}", reload.outcome?);
    show("after the edit");
    for id in [1, 3, 5] {
        match load_order(id) {
            Ok(order) => println!("{order}"),
            Err(DbError::Timeout) => println!("order {id}: timed out"),
            Err(DbError::Unavailable(open)) => println!("order {id}: {open}"),
        }
    }

    // A typo: reported with its line and column, and nothing changes.
    std::fs::write(
        &file,
        original.replace("success_threshold = 2", "sucess_threshold = 3"),
    )?;
    let reload = reloads.recv_timeout(Duration::from_secs(10))?;
    if let Err(err) = reload.outcome {
        println!("the edit was not applied:\n{err}");
    }
    show("after the bad edit");

    drop(watch);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
