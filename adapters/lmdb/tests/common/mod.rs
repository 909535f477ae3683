//! What the crash test and the fault test share: a batch workload whose entries say which
//! batch they belong to, applying the log to the state machine, and the check of a reopened
//! store against what was acknowledged before a kill or a fault.

use std::path::Path;

use dbadger_core::raft_types::{EntryPayload, LeaderId, LogEntry, LogId};
use dbadger_core::storage::memory::MemoryStateMachine;
use dbadger_core::storage::{LogStore, StateMachineStore, StateRead, StateWrite, StorageResult};
use dbadger_core::testing::dump;
use dbadger_core::{Command as KvCommand, rules};
use dbadger_lmdb::{LmdbOptions, LmdbStore};
use openraft::vote::RaftLeaderId;

/// The bytes of each value.
const VALUE_BYTES: usize = 256;

/// The store's options in both tests.
pub(crate) fn options() -> LmdbOptions {
    LmdbOptions {
        max_size_bytes: 1 << 30,
        ..LmdbOptions::default()
    }
}

fn log_id(index: u64) -> LogId {
    LogId::new(LeaderId::new(1, 1), index)
}

/// Entry `position` of `len` in `batch`: the key names the batch, the value its position.
pub(crate) fn batch_entry(batch: u64, position: u64, len: u64, index: u64) -> LogEntry {
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

/// The entries of batch `batch` of `len` entries, starting at log index `first`.
pub(crate) fn batch(batch: u64, len: u64, first: u64) -> Vec<LogEntry> {
    (0..len)
        .map(|position| batch_entry(batch, position, len, first + position))
        .collect()
}

/// Reads (batch, position, len) back from an entry written by [`batch_entry`].
pub(crate) fn batch_of(entry: &LogEntry) -> (u64, u64, u64) {
    let EntryPayload::Normal(KvCommand::Set { key, value }) = &entry.payload else {
        panic!("unexpected entry {entry:?}");
    };
    let key = std::str::from_utf8(key).expect("utf-8 key");
    let batch = key[6..16].parse().expect("batch number");
    (batch, u64::from(value[0]), u64::from(value[1]))
}

/// The next log index and batch number of a store reopened on a log written by [`batch`].
pub(crate) fn resume_point(log: &impl LogStore) -> (u64, u64) {
    let bounds = log.log_bounds().expect("bounds");
    let next_index = bounds.last.map_or(1, |id| id.index + 1);
    let next_batch = match bounds.last {
        Some(last) => batch_of(&log.entries(last.index, last.index + 1).expect("read")[0]).0 + 1,
        None => 0,
    };
    (next_index, next_batch)
}

/// Applies one log entry's command (blank and membership entries change no data).
fn apply_entry(txn: &mut impl StateWrite, entry: &LogEntry) -> StorageResult<()> {
    if let EntryPayload::Normal(command) = &entry.payload {
        rules::apply(
            command,
            entry.log_id.index,
            txn,
            &dbadger_core::Limits::default(),
        )?;
    }
    Ok(())
}

/// Applies the log up to `through` to the state machine in one transaction; `false` if it
/// was applied that far already.
pub(crate) fn apply_through(
    log: &impl LogStore,
    machine: &impl StateMachineStore,
    through: u64,
) -> StorageResult<bool> {
    let mut txn = machine.write()?;
    let mut state = txn.applied_state()?;
    let from = state.last_applied.map_or(1, |id| id.index + 1);
    if from > through {
        return Ok(false);
    }
    for entry in log.entries(from, through + 1)? {
        apply_entry(&mut txn, &entry)?;
        state.last_applied = Some(entry.log_id);
    }
    txn.set_applied_state(&state)?;
    txn.commit()?;
    Ok(true)
}

/// What was acknowledged so far, across every kill or fault.
#[derive(Default, Debug)]
pub(crate) struct Acknowledged {
    /// The last log index whose append was reported durable.
    pub(crate) log_index: u64,
    /// The highest term of a vote whose save returned.
    pub(crate) vote_term: u64,
    /// The last index applied by a committed state-machine transaction.
    pub(crate) applied_index: u64,
}

/// Reopens the store in `dir` and checks it against `acknowledged`:
///
/// - the environment opens cleanly and every entry decodes, with no hole in the log;
/// - every acknowledged entry and vote is present;
/// - no partial batch is visible (a batch's entries are all there or none);
/// - the applied state matches the log: its last applied index is in the log, and its data is
///   exactly the replay of the log up to that index (at least as far as was acknowledged).
pub(crate) fn verify(dir: &Path, acknowledged: &Acknowledged, round: u64) {
    let store = LmdbStore::open(dir, options()).expect("the environment reopens cleanly");
    let (log, machine) = store.into_parts();
    let bounds = log.log_bounds().expect("log bounds");
    let last = bounds.last.map_or(0, |id| id.index);
    assert!(
        last >= acknowledged.log_index,
        "round {round}: acknowledged entry {} lost (log ends at {last})",
        acknowledged.log_index
    );
    let entries = log.entries(1, last + 1).expect("every entry decodes");
    assert_eq!(entries.len() as u64, last, "round {round}: hole in the log");
    for (offset, entry) in entries.iter().enumerate() {
        assert_eq!(
            entry.log_id.index,
            offset as u64 + 1,
            "round {round}: index order"
        );
    }
    if let Some(tail) = entries.last() {
        let (batch, position, len) = batch_of(tail);
        assert_eq!(
            position + 1,
            len,
            "round {round}: partial batch {batch} visible"
        );
        let batch_entries = entries.iter().filter(|e| batch_of(e).0 == batch).count() as u64;
        assert_eq!(
            batch_entries, len,
            "round {round}: batch {batch} incomplete"
        );
    }
    let vote_term = log
        .vote()
        .expect("vote")
        .map_or(0, |vote| vote.leader_id.term);
    assert!(
        vote_term >= acknowledged.vote_term,
        "round {round}: acknowledged vote term {} lost (have {vote_term})",
        acknowledged.vote_term
    );
    let applied = machine
        .read()
        .expect("view")
        .applied_state()
        .expect("applied state");
    let applied_index = applied.last_applied.map_or(0, |id| id.index);
    assert!(applied_index <= last, "round {round}: applied past the log");
    assert!(
        applied_index >= acknowledged.applied_index,
        "round {round}: acknowledged apply {} lost (applied {applied_index})",
        acknowledged.applied_index
    );
    let replay = MemoryStateMachine::new();
    {
        let mut txn = replay.write().expect("replay txn");
        for entry in &entries[..applied_index as usize] {
            apply_entry(&mut txn, entry).expect("replay");
        }
        txn.commit().expect("replay commit");
    }
    assert_eq!(
        dump(&machine),
        replay.dump(),
        "round {round}: state differs from log replay"
    );
}
