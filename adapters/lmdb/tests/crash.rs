//! Crash safety on a real disk with real processes: a child process appends batches (several in
//! flight, group-committed), saves votes and applies entries to the state machine, reporting
//! each acknowledgement on stdout; the parent kills it with SIGKILL at a random moment, 60 times
//! over the same data directory, and after every kill reopens the store and checks:
//!
//! - the environment opens cleanly and every entry decodes, with no hole in the log;
//! - every acknowledged entry and vote is present;
//! - no partial batch is visible (a batch's entries are all there or none);
//! - the applied state matches the log: its last applied index is in the log, and its data is
//!   exactly the replay of the log up to that index (at least as far as was acknowledged).
//!
//! Runs as its own binary (`harness = false`) so that it can re-execute itself as the child.

// Standard output is the child's acknowledgement channel and the binary's test report.
#![allow(clippy::print_stdout)]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;

use dbadger_core::raft_types::{EntryPayload, LeaderId, LogEntry, LogId, Vote};
use dbadger_core::storage::memory::MemoryStateMachine;
use dbadger_core::storage::{FlushCallback, LogStore, StateMachineStore, StateRead, StateWrite};
use dbadger_core::testing::{Workload, dump};
use dbadger_core::{Command as KvCommand, rules};
use dbadger_lmdb::{LmdbOptions, LmdbStore};
use openraft::vote::RaftLeaderId;

const ITERATIONS: u64 = 60;
const VALUE_BYTES: usize = 256;

fn options() -> LmdbOptions {
    LmdbOptions {
        max_size_bytes: 1 << 30,
        ..LmdbOptions::default()
    }
}

fn log_id(index: u64) -> LogId {
    LogId::new(LeaderId::new(1, 1), index)
}

/// Entry `position` of `len` in `batch`: the key names the batch, the value its position.
fn batch_entry(batch: u64, position: u64, len: u64, index: u64) -> LogEntry {
    let mut value = vec![position as u8, len as u8];
    value.resize(VALUE_BYTES, (index % 251) as u8);
    LogEntry {
        log_id: log_id(index),
        payload: EntryPayload::Normal(KvCommand::Set {
            key: format!("batch-{batch:010}-{position:03}").into_bytes(),
            value,
        }),
    }
}

/// Reads (batch, position, len) back from an entry written by [`batch_entry`].
fn batch_of(entry: &LogEntry) -> (u64, u64, u64) {
    let EntryPayload::Normal(KvCommand::Set { key, value }) = &entry.payload else {
        panic!("unexpected entry {entry:?}");
    };
    let key = std::str::from_utf8(key).expect("utf-8 key");
    let batch = key[6..16].parse().expect("batch number");
    (batch, u64::from(value[0]), u64::from(value[1]))
}

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
    let bounds = log.log_bounds().expect("bounds");
    let mut next_index = bounds.last.map_or(1, |id| id.index + 1);
    let mut next_batch = match bounds.last {
        Some(last) => batch_of(&log.entries(last.index, last.index + 1).expect("read")[0]).0 + 1,
        None => 0,
    };
    let mut term = log
        .vote()
        .expect("vote")
        .map_or(1, |vote| vote.leader_id.term + 1);
    let (acked_sender, acked) = mpsc::channel::<u64>();
    let mut durable_index = next_index - 1;
    loop {
        let len = 1 + random.next_u64() % 64;
        let entries: Vec<LogEntry> = (0..len)
            .map(|position| batch_entry(next_batch, position, len, next_index + position))
            .collect();
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
        if random.next_u64().is_multiple_of(2) {
            apply_through(&log, &machine, durable_index);
        }
    }
}

/// Applies the durable log up to `through` to the state machine, one transaction.
fn apply_through(log: &impl LogStore, machine: &impl StateMachineStore, through: u64) {
    let mut txn = machine.write().expect("write txn");
    let mut state = txn.applied_state().expect("applied");
    let from = state.last_applied.map_or(1, |id| id.index + 1);
    if from > through {
        return;
    }
    for entry in log.entries(from, through + 1).expect("read log") {
        if let EntryPayload::Normal(command) = &entry.payload {
            rules::apply(
                command,
                entry.log_id.index,
                &mut txn,
                &dbadger_core::Limits::default(),
            )
            .expect("apply");
        }
        state.last_applied = Some(entry.log_id);
    }
    txn.set_applied_state(&state).expect("set applied");
    txn.commit().expect("commit");
    println!("S {through}");
}

/// What the parent has seen acknowledged so far, across all kills.
#[derive(Default, Debug)]
struct Acknowledged {
    log_index: u64,
    vote_term: u64,
    applied_index: u64,
}

impl Acknowledged {
    fn record(&mut self, line: &str) {
        let (kind, value) = line.split_once(' ').expect("child line");
        let value: u64 = value.parse().expect("child number");
        match kind {
            "A" => self.log_index = self.log_index.max(value),
            "V" => self.vote_term = self.vote_term.max(value),
            "S" => self.applied_index = self.applied_index.max(value),
            other => panic!("unknown child line {other}"),
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
            acknowledged.record(&line);
        }
        child.kill().expect("SIGKILL child");
        child.wait().expect("reap child");
        // Lines the child wrote before it died are acknowledgements too.
        for line in lines.map_while(Result::ok) {
            acknowledged.record(&line);
        }
        verify(dir.path(), &acknowledged, iteration);
    }
    eprintln!("crash test: {ITERATIONS} kills survived; acknowledged {acknowledged:?}");
}

fn verify(dir: &Path, acknowledged: &Acknowledged, iteration: u64) {
    let store = LmdbStore::open(dir, options()).expect("environment reopens cleanly after SIGKILL");
    let (log, machine) = store.into_parts();
    let bounds = log.log_bounds().expect("log bounds");
    let last = bounds.last.map_or(0, |id| id.index);
    assert!(
        last >= acknowledged.log_index,
        "iteration {iteration}: acknowledged entry {} lost (log ends at {last})",
        acknowledged.log_index
    );
    let entries = log.entries(1, last + 1).expect("every entry decodes");
    assert_eq!(
        entries.len() as u64,
        last,
        "iteration {iteration}: hole in the log"
    );
    for (offset, entry) in entries.iter().enumerate() {
        assert_eq!(
            entry.log_id.index,
            offset as u64 + 1,
            "iteration {iteration}: index order"
        );
    }
    if let Some(tail) = entries.last() {
        let (batch, position, len) = batch_of(tail);
        assert_eq!(
            position + 1,
            len,
            "iteration {iteration}: partial batch {batch} visible"
        );
        let batch_entries = entries.iter().filter(|e| batch_of(e).0 == batch).count() as u64;
        assert_eq!(
            batch_entries, len,
            "iteration {iteration}: batch {batch} incomplete"
        );
    }
    let vote_term = log
        .vote()
        .expect("vote")
        .map_or(0, |vote| vote.leader_id.term);
    assert!(
        vote_term >= acknowledged.vote_term,
        "iteration {iteration}: acknowledged vote term {} lost (have {vote_term})",
        acknowledged.vote_term
    );
    let applied = machine
        .read()
        .expect("view")
        .applied_state()
        .expect("applied state");
    let applied_index = applied.last_applied.map_or(0, |id| id.index);
    assert!(
        applied_index <= last,
        "iteration {iteration}: applied past the log"
    );
    assert!(
        applied_index >= acknowledged.applied_index,
        "iteration {iteration}: acknowledged apply {} lost (applied {applied_index})",
        acknowledged.applied_index
    );
    let replay = MemoryStateMachine::new();
    {
        let mut txn = replay.write().expect("replay txn");
        for entry in &entries[..applied_index as usize] {
            if let EntryPayload::Normal(command) = &entry.payload {
                rules::apply(
                    command,
                    entry.log_id.index,
                    &mut txn,
                    &dbadger_core::Limits::default(),
                )
                .expect("replay");
            }
        }
        txn.commit().expect("replay commit");
    }
    assert_eq!(
        dump(&machine),
        replay.dump(),
        "iteration {iteration}: state differs from log replay"
    );
}
