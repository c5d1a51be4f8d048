//! One replica of a service whose breaker `payments` is shared through
//! Redis. Start it twice, in two terminals, and drive each from its
//! standard input:
//!
//! ```text
//! cargo run -p circuit-redis --example replica -- redis://127.0.0.1:6379 a
//! cargo run -p circuit-redis --example replica -- redis://127.0.0.1:6379 b
//! ```
//!
//! Commands, one per line: `fail` (a failed call), `call` (a call that
//! succeeds, if the breaker lets it), `force_open`, `reset`, `state`,
//! `quit`. Type `fail` three times in one and `state` in the other: it is
//! open too. Each command prints one line.

use std::io::{BufRead, Write};
use std::time::Duration;

use circuit_redis::SharedBreakers;
use circuit_runtime::{registry, Config};

const NAME: &str = "payments";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "redis://127.0.0.1:6379".into());
    let replica = args.next().unwrap_or_else(|| "replica".into());
    let name = args.next().unwrap_or_else(|| NAME.into());

    let config = Config::builder()
        .failure_threshold(3)
        .recovery_timeout(Duration::from_secs(30))
        .build()?;
    let breaker = registry().get_or_create(&name, config);
    let shared = SharedBreakers::builder(url)
        .share_transitions(name.clone())
        .replica(replica.clone())
        .sync_interval(Duration::from_millis(20))
        .start()?;

    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    writeln!(out, "replica {replica} shares '{name}'")?;
    out.flush()?;
    for line in std::io::stdin().lock().lines() {
        let answer = match line?.trim() {
            "fail" => {
                let _ = breaker.call(|| Err::<(), _>("connection refused"));
                format!("failed; {}", breaker.state())
            }
            "call" => match breaker.call(|| Ok::<_, ()>(())) {
                Ok(()) => "ok".to_owned(),
                Err(error) => format!("rejected: {error:?}"),
            },
            "force_open" => {
                breaker.force_open();
                breaker.state().to_string()
            }
            "reset" => {
                breaker.reset();
                breaker.state().to_string()
            }
            "state" => format!(
                "{}{}",
                breaker.state(),
                if shared.is_degraded() {
                    " (degraded)"
                } else {
                    ""
                }
            ),
            "quit" => break,
            other => format!("unknown command {other:?}"),
        };
        writeln!(out, "{answer}")?;
        out.flush()?;
    }
    Ok(())
}
