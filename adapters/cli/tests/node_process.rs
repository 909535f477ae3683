//! `dbadger node` as a real process: it starts a working node, reports it on stderr, and stops
//! gracefully (exit status 0) on SIGTERM and SIGINT; bad flag combinations are refused with a
//! clear message and exit status 2.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Command, Stdio};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free port")
}

/// Starts a bootstrapped node, waits for its "node started" line, sends `signal`, and checks
/// that it stops cleanly with its data directory created.
fn start_and_stop(signal: &str) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let bind = format!("127.0.0.1:{}", free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_dbadger"))
        .args(["node", "--bootstrap", "--headless", "--bind", &bind, "--db"])
        .arg(dir.path().join("data"))
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dbadger");
    let mut log = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let started = log
        .by_ref()
        .map_while(Result::ok)
        .any(|line| line.contains("node started"));
    assert!(started, "the node never reported that it started");
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let rest: Vec<String> = log.map_while(Result::ok).collect();
    let exit = child.wait().expect("wait");
    assert!(
        exit.success(),
        "exit status {exit:?}; log tail: {:?}",
        rest.iter().rev().take(5).collect::<Vec<_>>()
    );
    assert!(
        rest.iter().any(|line| line.contains("node stopped")),
        "no graceful stop in the log"
    );
    assert!(
        dir.path().join("data/lmdb/data.mdb").exists(),
        "LMDB data file created"
    );
}

/// SIGTERM stops the node gracefully.
#[test]
fn sigterm_stops_gracefully() {
    start_and_stop("-TERM");
}

/// SIGINT stops the node gracefully.
#[test]
fn sigint_stops_gracefully() {
    start_and_stop("-INT");
}

/// `--bootstrap` with `--join` is refused before anything starts.
#[test]
fn conflicting_flags_are_refused() {
    let output = Command::new(env!("CARGO_BIN_EXE_dbadger"))
        .args([
            "node",
            "--bootstrap",
            "--join",
            "127.0.0.1:1",
            "--in-memory",
        ])
        .output()
        .expect("run dbadger");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("bootstrap and join cannot be used together"),
        "stderr: {stderr}"
    );
}
