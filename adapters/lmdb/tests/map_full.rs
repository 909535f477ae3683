//! At its configured maximum the store refuses writes with the typed "storage full" error,
//! keeps serving reads, loses nothing acknowledged, and continues after a restart with a larger
//! maximum.

use std::sync::mpsc;

use dbadger_core::raft_types::{EntryPayload, LeaderId, LogEntry, LogId};
use dbadger_core::storage::{
    FlushCallback, KvRead, KvWrite, LogStore, StateMachineStore, StateWrite,
};
use dbadger_core::{Command, StorageError};
use dbadger_lmdb::{LmdbOptions, LmdbStore};
use openraft::vote::RaftLeaderId;

const SMALL_MAX: u64 = 1 << 20;

fn options(max_size_bytes: u64) -> LmdbOptions {
    LmdbOptions {
        max_size_bytes,
        ..LmdbOptions::default()
    }
}

fn entry(index: u64) -> LogEntry {
    LogEntry {
        log_id: LogId::new(LeaderId::new(1, 1), index),
        payload: EntryPayload::Normal(Command::Set {
            key: index.to_be_bytes().to_vec(),
            value: vec![0xAB; 2000],
        }),
    }
}

fn append(log: &impl LogStore, entries: Vec<LogEntry>) -> Result<(), StorageError> {
    let (sender, receiver) = mpsc::channel();
    log.append(
        entries,
        FlushCallback::new(move |result| drop(sender.send(result))),
    )?;
    receiver.recv().expect("callback called")
}

/// The log fills up: the failing append reports `Full`, every earlier entry stays readable,
/// and after reopening with a larger maximum, appends continue where they stopped.
#[test]
fn full_log_refuses_appends_and_recovers_with_a_larger_maximum() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut acknowledged = 0;
    {
        let (log, _) = LmdbStore::open(dir.path(), options(SMALL_MAX))
            .expect("open")
            .into_parts();
        let error = loop {
            match append(&log, vec![entry(acknowledged + 1)]) {
                Ok(()) => acknowledged += 1,
                Err(error) => break error,
            }
            assert!(acknowledged < 10_000, "a 1 MiB store never filled");
        };
        assert!(
            matches!(
                error,
                StorageError::Full {
                    max_bytes: SMALL_MAX
                }
            ),
            "unexpected error {error:?}"
        );
        assert!(
            acknowledged > 100,
            "only {acknowledged} entries fit in 1 MiB"
        );
        let entries = log
            .entries(1, acknowledged + 2)
            .expect("reads work when full");
        assert_eq!(
            entries.len() as u64,
            acknowledged,
            "acknowledged entries all readable, the refused one absent"
        );
    }
    let (log, _) = LmdbStore::open(dir.path(), options(SMALL_MAX * 4))
        .expect("reopen larger")
        .into_parts();
    assert_eq!(
        log.log_bounds().expect("bounds").last.map(|id| id.index),
        Some(acknowledged)
    );
    append(&log, vec![entry(acknowledged + 1), entry(acknowledged + 2)]).expect("appends continue");
    assert_eq!(
        log.entries(1, acknowledged + 3).expect("read").len() as u64,
        acknowledged + 2
    );
}

/// The state machine fills up: the failing transaction reports `Full` and leaves no trace;
/// committed data stays readable.
#[test]
fn full_state_machine_refuses_writes_and_keeps_reads() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (_, machine) = LmdbStore::open(dir.path(), options(SMALL_MAX))
        .expect("open")
        .into_parts();
    let mut committed = 0u64;
    let error = loop {
        let mut txn = machine.write().expect("write txn");
        let key = committed.to_be_bytes();
        match txn.put(&key, &[7; 4000], committed + 1) {
            Ok(()) => {}
            Err(error) => break error,
        }
        match txn.commit() {
            Ok(()) => committed += 1,
            Err(error) => break error,
        }
        assert!(committed < 10_000, "a 1 MiB store never filled");
    };
    assert!(
        matches!(error, StorageError::Full { .. }),
        "unexpected error {error:?}"
    );
    let view = machine.read().expect("reads work when full");
    for index in 0..committed {
        assert!(
            view.get(&index.to_be_bytes()).expect("get").is_some(),
            "committed key {index} lost"
        );
    }
    assert!(
        view.get(&committed.to_be_bytes()).expect("get").is_none(),
        "refused write visible"
    );
}

fn indices(log: &impl LogStore) -> Vec<u64> {
    log.entries(0, u64::MAX)
        .expect("read")
        .iter()
        .map(|entry| entry.log_id.index)
        .collect()
}

/// A batch too big for the map fails its flush; a small append after it must fail as well
/// (the fsyncgate rule: nothing is written after a failed flush until the store is reopened),
/// or the durable log gets a hole where the big batch was.
#[test]
fn a_failed_flush_fails_later_writes_and_leaves_no_hole() {
    let dir = tempfile::tempdir().expect("temporary directory");
    {
        let (log, _) = LmdbStore::open(dir.path(), options(SMALL_MAX))
            .expect("open")
            .into_parts();
        append(&log, (1..=3).map(entry).collect()).expect("small batch fits");
        let too_big: Vec<LogEntry> = (4..=1000).map(entry).collect();
        let error = append(&log, too_big).expect_err("a 2 MB batch cannot fit in 1 MiB");
        assert!(matches!(error, StorageError::Full { .. }), "{error:?}");
        assert!(
            append(&log, vec![entry(1001)]).is_err(),
            "an append after a failed flush was acknowledged"
        );
        let vote = dbadger_core::raft_types::Vote::new(2, 1);
        assert!(
            log.save_vote(&vote).is_err(),
            "a vote after a failed flush was saved"
        );
    }
    let (log, _) = LmdbStore::open(dir.path(), options(SMALL_MAX))
        .expect("reopen")
        .into_parts();
    assert_eq!(indices(&log), vec![1, 2, 3], "the durable log has a hole");
    append(&log, vec![entry(4)]).expect("appends continue after a reopen");
    assert_eq!(indices(&log), vec![1, 2, 3, 4]);
}
