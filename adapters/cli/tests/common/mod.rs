//! Real `dbadger` processes for the tests: nodes on loopback that bind port 0 and report the
//! address they got, and client commands run with a timeout, so a hang fails a test instead of
//! stalling CI.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

pub(crate) mod netlab;

/// How long a node may take to report that it started.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How long one client command may take before the test fails.
pub(crate) const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// The binary under test.
pub(crate) fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_dbadger")
}

/// A node process; stopped with SIGTERM when dropped (unless it was killed).
pub(crate) struct Node {
    child: Child,
    /// The address it serves on, as it reported it.
    pub(crate) addr: String,
    /// Its data directory.
    pub(crate) dir: PathBuf,
    /// How many lines it has logged so far.
    log_lines: Arc<AtomicU64>,
    /// The first [`KEPT_LOG_LINES`] lines it logged.
    kept: Arc<std::sync::Mutex<Vec<String>>>,
}

/// How many log lines of each node the tests keep to search.
const KEPT_LOG_LINES: usize = 20_000;

/// The address in a JSON log line `{"fields":{"message":"node started","addr":"..."}}`.
fn started_addr(line: &str) -> Option<String> {
    let event: serde_json::Value = serde_json::from_str(line).ok()?;
    let fields = event.get("fields")?;
    if fields.get("message")?.as_str()? != "node started" {
        return None;
    }
    Some(fields.get("addr")?.as_str()?.to_owned())
}

impl Node {
    /// Starts `dbadger node --headless` on `bind` (port 0 for any) with its data in `dir` and
    /// `flags`, and waits until it reports its address.
    pub(crate) fn start(dir: &Path, bind: &str, flags: &[&str]) -> Node {
        Node::start_with(Command::new(binary()), dir, bind, flags)
    }

    /// Starts the node like [`Node::start`] inside the network namespace `netns`.
    pub(crate) fn start_in(netns: &str, dir: &Path, bind: &str, flags: &[&str]) -> Node {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", netns, binary()]);
        Node::start_with(command, dir, bind, flags)
    }

    fn start_with(mut command: Command, dir: &Path, bind: &str, flags: &[&str]) -> Node {
        let mut child = command
            .args([
                "node",
                "--headless",
                "--log-format",
                "json",
                "--bind",
                bind,
                "--db",
            ])
            .arg(dir)
            .args(flags)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn dbadger node");
        let stderr = child.stderr.take().expect("stderr");
        let (found, address) = mpsc::channel();
        let log_lines = Arc::new(AtomicU64::new(0));
        let kept = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (counted, keeping) = (Arc::clone(&log_lines), Arc::clone(&kept));
        std::thread::spawn(move || {
            let mut reported = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                counted.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut kept) = keeping.lock()
                    && kept.len() < KEPT_LOG_LINES
                {
                    kept.push(line.clone());
                }
                if !reported && let Some(addr) = started_addr(&line) {
                    let _ = found.send(addr);
                    reported = true;
                }
                // Keep draining the log so the node never blocks on a full pipe.
            }
        });
        let addr = match address.recv_timeout(START_TIMEOUT) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "the node in {} did not report that it started",
                    dir.display()
                );
            }
        };
        Node {
            child,
            addr,
            dir: dir.to_path_buf(),
            log_lines,
            kept,
        }
    }

    /// The kept log lines that contain `text`.
    pub(crate) fn logged(&self, text: &str) -> Vec<String> {
        self.kept
            .lock()
            .map(|kept| {
                kept.iter()
                    .filter(|line| line.contains(text))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The lines the node has logged so far.
    pub(crate) fn log_lines(&self) -> u64 {
        self.log_lines.load(Ordering::Relaxed)
    }

    /// The CPU time (user and system) the process has used so far, from `/proc`.
    pub(crate) fn cpu_time(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))
            .expect("the node's /proc stat");
        // The command name (field 2) may hold spaces; the fields after it are plain numbers.
        let after_name = &stat[stat.rfind(')').expect("stat has a command name") + 2..];
        let fields: Vec<&str> = after_name.split(' ').collect();
        // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the name.
        let ticks: u64 =
            fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
        let per_second: u64 = Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8_lossy(&out.stdout).trim().parse().ok())
            .unwrap_or(100);
        Duration::from_secs_f64(ticks as f64 / per_second.max(1) as f64)
    }

    /// kill -9; the node stays dead.
    pub(crate) fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The node's port.
    pub(crate) fn port(&self) -> &str {
        self.addr.rsplit_once(':').map_or("0", |(_, port)| port)
    }

    /// kill -9, then start the node again on the same data directory and address.
    pub(crate) fn kill9_and_restart(mut self, before_restart: impl FnOnce()) -> Node {
        let _ = self.child.kill();
        let _ = self.child.wait();
        before_restart();
        Node::start(&self.dir, &self.addr, &[])
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // A child not yet reaped keeps its pid, so the signal cannot reach another process.
        if !matches!(self.child.try_wait(), Ok(None)) {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The index of the node that reports itself leader (asking all of them, for up to 20 s).
pub(crate) fn leader_index(nodes: &[Node]) -> usize {
    let endpoints = nodes
        .iter()
        .map(|node| node.addr.as_str())
        .collect::<Vec<_>>()
        .join(",");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let output = run(&["status", "--endpoints", &endpoints, "--output", "json"]);
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            let status: serde_json::Value = serde_json::from_str(line).expect("status JSON");
            if status["is_leader"] == true
                && let Some(index) = nodes.iter().position(|node| node.addr == status["addr"])
            {
                return index;
            }
        }
        assert!(Instant::now() < deadline, "no leader among {endpoints}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs `dbadger ARGS` (with `stdin` on its standard input), failing the test if it takes
/// longer than [`COMMAND_TIMEOUT`].
pub(crate) fn run_with_stdin(args: &[&str], stdin: &[u8]) -> Output {
    use std::io::Write;
    let mut child = Command::new(binary())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dbadger");
    if let Some(mut input) = child.stdin.take() {
        let _ = input.write_all(stdin);
    }
    let pid = child.id();
    let (done, finished) = mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let output = child.wait_with_output();
        let _ = done.send(());
        output
    });
    if finished.recv_timeout(COMMAND_TIMEOUT).is_err() {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
        panic!("dbadger {args:?} did not finish within {COMMAND_TIMEOUT:?}");
    }
    waiter
        .join()
        .expect("waiter thread")
        .expect("dbadger output")
}

/// Runs `dbadger ARGS` with an empty standard input.
pub(crate) fn run(args: &[&str]) -> Output {
    run_with_stdin(args, b"")
}

/// The exit code and standard output of a command, as text.
pub(crate) fn result(output: &Output) -> (i32, String) {
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

/// Starts a node bootstrapping a cluster and two that join it (each through the previous),
/// in fresh directories under `root`; `extra(i)` adds flags to node `i` (TLS material).
pub(crate) fn three_nodes(root: &Path, extra: impl Fn(usize) -> Vec<String>) -> Vec<Node> {
    form_three(root, |i, dir, start_flags| {
        let mut flags = extra(i);
        flags.extend(start_flags.iter().map(|flag| (*flag).to_owned()));
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        Node::start(dir, "127.0.0.1:0", &flags)
    })
}

/// Forms a three-node cluster: node 0 bootstraps, each next one joins through the previous.
/// `start(i, dir, flags)` starts node `i` in `dir` (under `root`) with the bootstrap or join
/// flags it must add.
pub(crate) fn form_three(root: &Path, start: impl Fn(usize, &Path, &[&str]) -> Node) -> Vec<Node> {
    let mut nodes: Vec<Node> = Vec::new();
    for i in 0..3 {
        let dir = root.join(format!("node{}", i + 1));
        let flags: Vec<String> = match nodes.last() {
            None => vec!["--bootstrap".to_owned()],
            Some(previous) => vec!["--join".to_owned(), previous.addr.clone()],
        };
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        nodes.push(start(i, &dir, &flags));
    }
    nodes
}
