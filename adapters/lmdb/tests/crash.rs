//! Crash safety on a real disk with real processes: a child process appends batches (several in
//! flight, group-committed), saves votes and applies entries to the state machine, reporting
//! each acknowledgement on stdout; the parent kills it with SIGKILL at a random moment, 100
//! times over the same data directory, and after every kill reopens the store and checks it
//! against what was acknowledged (`common::verify`: no hole, nothing acknowledged lost, no
//! partial batch, the applied state is the replay of the log).
//!
//! Runs as its own binary (`harness = false`) so that it can re-execute itself as the child.

// Standard output is the child's acknowledgement channel and the binary's test report.
#![allow(clippy::print_stdout)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;

use common::{Acknowledged, apply_through, batch, options, resume_point, verify};
use dbadger_core::raft_types::Vote;
use dbadger_core::storage::{FlushCallback, LogStore};
use dbadger_core::testing::Workload;
use dbadger_lmdb::LmdbStore;

const ITERATIONS: u64 = 100;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(position) = args.iter().position(|arg| arg == "--child") {
        let dir = &args[position + 1];
        let seed = args[position + 2].parse().expect("seed");
        run_child(Path::new(dir), seed);
        return;
    }
    if args.iter().any(|arg| arg == "--list") {
        // `cargo test -- --list` asks every test binary for its tests.
        println!("crash_kill_reopen: test");
        return;
    }
    run_parent();
    println!("test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out");
}

/// The child: appends, votes and applies until it is killed.
fn run_child(dir: &Path, seed: u64) {
    let store = LmdbStore::open(dir, options()).expect("child opens the store");
    let (log, machine) = store.into_parts();
    let mut random = Workload::new(seed);
    let (mut next_index, mut next_batch) = resume_point(&log);
    let mut term = log
        .vote()
        .expect("vote")
        .map_or(1, |vote| vote.leader_id.term + 1);
    let (acked_sender, acked) = mpsc::channel::<u64>();
    let mut durable_index = next_index - 1;
    loop {
        let len = 1 + random.next_u64() % 64;
        let entries = batch(next_batch, len, next_index);
        let last = next_index + len - 1;
        let sender = acked_sender.clone();
        log.append(
            entries,
            FlushCallback::new(move |result| {
                result.expect("append durable");
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "A {last}");
                let _ = out.flush();
                let _ = sender.send(last);
            }),
        )
        .expect("append accepted");
        next_index = last + 1;
        next_batch += 1;
        if random.next_u64().is_multiple_of(4) {
            log.save_vote(&Vote::new(term, 1)).expect("vote saved");
            println!("V {term}");
            term += 1;
        }
        while let Ok(index) = acked.try_recv() {
            durable_index = durable_index.max(index);
        }
        if random.next_u64().is_multiple_of(2)
            && apply_through(&log, &machine, durable_index).expect("apply")
        {
            println!("S {durable_index}");
        }
    }
}

fn run_parent() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let exe = std::env::current_exe().expect("own executable");
    let mut acknowledged = Acknowledged::default();
    let mut random = Workload::new(0xC0FFEE);
    for iteration in 0..ITERATIONS {
        let mut child = Command::new(&exe)
            .arg("--child")
            .arg(dir.path())
            .arg(iteration.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn child");
        let mut lines = BufReader::new(child.stdout.take().expect("child stdout")).lines();
        let kill_after = 1 + random.next_u64() % 40;
        for _ in 0..kill_after {
            let line = lines.next().expect("child output").expect("child line");
            record(&mut acknowledged, &line);
        }
        child.kill().expect("SIGKILL child");
        child.wait().expect("reap child");
        // Lines the child wrote before it died are acknowledgements too.
        for line in lines.map_while(Result::ok) {
            record(&mut acknowledged, &line);
        }
        verify(dir.path(), &acknowledged, iteration);
    }
    eprintln!("crash test: {ITERATIONS} kills survived; acknowledged {acknowledged:?}");
}

/// Records one acknowledgement line of the child.
fn record(acknowledged: &mut Acknowledged, line: &str) {
    let (kind, value) = line.split_once(' ').expect("child line");
    let value: u64 = value.parse().expect("child number");
    match kind {
        "A" => acknowledged.log_index = acknowledged.log_index.max(value),
        "V" => acknowledged.vote_term = acknowledged.vote_term.max(value),
        "S" => acknowledged.applied_index = acknowledged.applied_index.max(value),
        other => panic!("unknown child line {other}"),
    }
}
