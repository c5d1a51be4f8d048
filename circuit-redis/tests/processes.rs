//! Two replicas as two OS processes (the `replica` example, started
//! twice) sharing one breaker through a real Redis.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use common::{eventually, RedisServer};

/// The example binary, which `cargo test` builds beside this test.
fn replica_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let target = exe
        .parent()
        .and_then(std::path::Path::parent)
        .expect("target/<profile>/deps");
    let binary = target.join("examples").join("replica");
    if !binary.exists() {
        // `cargo test` builds the examples, but not when asked for one
        // test target alone: build it the same way.
        let mut build = Command::new(env!("CARGO"));
        build.args(["build", "-p", "circuit-redis", "--example", "replica"]);
        if target.ends_with("release") {
            build.arg("--release");
        }
        let status = build.status().expect("cargo runs");
        assert!(status.success(), "the replica example builds");
    }
    assert!(binary.exists(), "{} was built", binary.display());
    binary
}

struct Replica {
    child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
}

impl Replica {
    fn start(url: &str, id: &str) -> Self {
        let mut child = Command::new(replica_binary())
            .args([url, id, "processes.payments"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the replica starts");
        let input = child.stdin.take().expect("piped");
        let output = BufReader::new(child.stdout.take().expect("piped"));
        let mut replica = Self {
            child,
            input,
            output,
        };
        let banner = replica.line();
        assert!(
            banner.starts_with(&format!("replica {id} shares")),
            "{banner}"
        );
        replica
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.output
            .read_line(&mut line)
            .expect("the replica answers");
        assert!(!line.is_empty(), "the replica exited");
        line.trim_end().to_owned()
    }

    fn send(&mut self, command: &str) -> String {
        writeln!(self.input, "{command}").expect("the replica reads");
        self.line()
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = writeln!(self.input, "quit");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn two_processes_share_one_breaker() {
    let redis = RedisServer::start();
    let mut a = Replica::start(&redis.url(), "a");
    let mut b = Replica::start(&redis.url(), "b");
    assert_eq!(a.send("fail"), "failed; closed");
    assert_eq!(a.send("fail"), "failed; closed");
    assert_eq!(a.send("fail"), "failed; open");
    eventually("B sees A's trip", || b.send("state") == "open");
    assert!(
        b.send("call").starts_with("rejected"),
        "B rejects without failing itself"
    );

    assert_eq!(b.send("reset"), "closed");
    eventually("A sees B's reset", || a.send("state") == "closed");
    assert_eq!(a.send("call"), "ok");

    assert_eq!(a.send("force_open"), "forced_open");
    eventually("B is forced open", || b.send("state") == "forced_open");
}
