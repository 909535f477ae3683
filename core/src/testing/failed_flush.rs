//! The conformance check for stores that can fail a flush on purpose: after the first failed
//! flush, every later write fails without reaching the disk, and a reopened store holds a log
//! with no hole.

use std::sync::mpsc;
use std::time::Duration;

use openraft::vote::RaftLeaderId;

use super::FaultyStoreFactory;
use crate::StorageError;
use crate::raft_types::{EntryPayload, LeaderId, LogEntry, LogId, Vote};
use crate::storage::{FlushCallback, LogStore, StateMachineStore, StateWrite};

/// How long the check waits for a flush callback before declaring it lost.
const FLUSH_WAIT: Duration = Duration::from_secs(30);

fn entry(index: u64) -> LogEntry {
    LogEntry {
        log_id: LogId::new(LeaderId::new(1, 1), index),
        payload: EntryPayload::Blank,
    }
}

/// Appends and waits for the flush: the outcome of the call or of the flush.
fn append(log: &impl LogStore, entries: Vec<LogEntry>) -> Result<(), StorageError> {
    let (sender, receiver) = mpsc::channel();
    log.append(
        entries,
        FlushCallback::new(move |result| drop(sender.send(result))),
    )?;
    receiver
        .recv_timeout(FLUSH_WAIT)
        .expect("flush callback called")
}

/// Appends without waiting; the receiver gets the flush's outcome (or the call's error).
fn append_queued(log: &impl LogStore, index: u64) -> mpsc::Receiver<Result<(), StorageError>> {
    let (sender, receiver) = mpsc::channel();
    let on_flush = sender.clone();
    if let Err(error) = log.append(
        vec![entry(index)],
        FlushCallback::new(move |result| drop(on_flush.send(result))),
    ) {
        drop(sender.send(Err(error)));
    }
    receiver
}

fn indices(log: &impl LogStore) -> Vec<u64> {
    log.entries(0, u64::MAX)
        .expect("the log reads")
        .iter()
        .map(|entry| entry.log_id.index)
        .collect()
}

/// Appends 1..=3, makes the next flush fail, then appends 4 (fails) and 5, 6 behind it, saves a
/// vote and commits a state-machine write: all of them must fail. After a reopen the log is
/// 1..=k with 3 <= k <= 4 (the failed append may or may not have reached the disk), never with
/// 5 or 6, and appends continue from k.
pub(super) fn failed_flush_fails_later_writes<F: FaultyStoreFactory>(factory: &F) {
    let (guard, log, machine) = factory.create();
    append(&log, (1..=3).map(entry).collect()).expect("appends before the fault flush");
    factory.fail_next_flush(&guard);
    let failed = append(&log, vec![entry(4)]);
    assert!(failed.is_err(), "the append whose flush failed succeeded");
    let behind: Vec<_> = (5..=6).map(|index| append_queued(&log, index)).collect();
    for (outcome, index) in behind.into_iter().zip(5..) {
        let outcome = outcome
            .recv_timeout(FLUSH_WAIT)
            .expect("an outcome for every append");
        assert!(
            outcome.is_err(),
            "append {index} after a failed flush succeeded"
        );
    }
    assert!(
        log.save_vote(&Vote::new(2, 1)).is_err(),
        "a vote was saved after a failed flush"
    );
    let machine_write = machine.write().and_then(StateWrite::commit);
    assert!(
        machine_write.is_err(),
        "a state-machine commit succeeded after a failed flush"
    );
    let (log, _machine) = factory.reopen(&guard, log, machine);
    let after = indices(&log);
    let last = after.last().copied().unwrap_or(0);
    assert!(
        (3..=4).contains(&last) && after == (1..=last).collect::<Vec<_>>(),
        "after a failed flush and a reopen the log is {after:?}"
    );
    assert_ne!(
        log.vote().expect("the vote reads"),
        Some(Vote::new(2, 1)),
        "the refused vote is on disk"
    );
    append(&log, vec![entry(last + 1)]).expect("appends continue after a reopen");
    assert_eq!(indices(&log), (1..=last + 1).collect::<Vec<_>>());
}
