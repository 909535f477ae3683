//! The simulator store keeps the storage contracts (the core conformance suite and openraft's
//! own suite) and models durability: what was not synced is lost at a crash.
#![cfg(madsim)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use dbadger::simulation::SimRuntime;
use dbadger_core::raft_types::{EntryPayload, LeaderId, LogEntry, LogId, Vote};
use dbadger_core::storage::{
    FlushCallback, KvRead, KvWrite, LogStore, StateMachineStore, StateWrite,
};
use dbadger_core::testing::{
    FaultyStoreFactory, StoreFactory, run_conformance, run_failed_flush_conformance,
    run_openraft_suite,
};
use dbadger_sim::store::{FaultRates, SimDisk, SimLogStore, SimStateMachine, SyncPolicy};
use openraft::vote::RaftLeaderId;

struct Immediate;

impl StoreFactory for Immediate {
    type Guard = Arc<SimDisk>;
    type Log = SimLogStore;
    type Machine = SimStateMachine;

    fn create(&self) -> (Arc<SimDisk>, SimLogStore, SimStateMachine) {
        let disk = SimDisk::new(SyncPolicy::Immediate);
        let (log, machine) = disk.open();
        (disk, log, machine)
    }
}

impl FaultyStoreFactory for Immediate {
    fn fail_next_flush(&self, disk: &Arc<SimDisk>) {
        disk.fail_next_sync();
    }

    fn reopen(
        &self,
        disk: &Arc<SimDisk>,
        log: SimLogStore,
        machine: SimStateMachine,
    ) -> (SimLogStore, SimStateMachine) {
        drop((log, machine));
        disk.open()
    }
}

fn entry(index: u64) -> LogEntry {
    LogEntry {
        log_id: LogId::new(LeaderId::new(1, 1), index),
        payload: EntryPayload::Blank,
    }
}

fn delayed() -> Arc<SimDisk> {
    SimDisk::new(SyncPolicy::Delayed {
        min: Duration::from_millis(5),
        max: Duration::from_millis(5),
    })
}

fn indices(log: &SimLogStore) -> Vec<u64> {
    log.entries(0, u64::MAX)
        .expect("read")
        .iter()
        .map(|entry| entry.log_id.index)
        .collect()
}

fn counting_callback(flushed: &Arc<AtomicUsize>, succeeded: bool) -> FlushCallback {
    let flushed = Arc::clone(flushed);
    FlushCallback::new(move |result| {
        if result.is_ok() == succeeded {
            flushed.fetch_add(1, Ordering::SeqCst);
        }
    })
}

fn append(log: &SimLogStore, index: u64) {
    log.append(vec![entry(index)], FlushCallback::new(|_| {}))
        .expect("append");
}

#[madsim::test]
async fn simulator_store_passes_the_conformance_suites() {
    run_conformance(&Immediate);
    run_openraft_suite::<SimRuntime, _>(Immediate)
        .await
        .expect("openraft storage suite");
}

/// After a failed sync every later write fails, and the rebooted log has no hole.
#[madsim::test]
async fn simulator_store_fails_every_write_after_a_failed_sync() {
    run_failed_flush_conformance(&Immediate);
}

#[madsim::test]
async fn unsynced_appends_are_lost_at_a_crash_and_synced_ones_survive() {
    let disk = delayed();
    let (log, _) = disk.open();
    let flushed = Arc::new(AtomicUsize::new(0));
    log.append(vec![entry(1), entry(2)], counting_callback(&flushed, true))
        .expect("append");
    madsim::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(
        flushed.load(Ordering::SeqCst),
        1,
        "the first append was synced"
    );
    log.append(vec![entry(3)], counting_callback(&flushed, true))
        .expect("append");
    assert_eq!(indices(&log), [1, 2, 3], "the node sees its unsynced write");
    disk.crash(false);
    let (log, _) = disk.open();
    assert_eq!(indices(&log), [1, 2], "only the synced entries survive");
    madsim::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(
        flushed.load(Ordering::SeqCst),
        1,
        "a lost append is never acknowledged"
    );
}

#[madsim::test]
async fn a_vote_is_durable_when_saved_and_takes_earlier_writes_with_it() {
    let disk = delayed();
    let (log, _) = disk.open();
    append(&log, 1);
    log.save_vote(&Vote::new(4, 2)).expect("vote");
    disk.crash(false);
    let (log, _) = disk.open();
    assert_eq!(log.vote().expect("vote"), Some(Vote::new(4, 2)));
    assert_eq!(
        indices(&log),
        [1],
        "the earlier append was synced with the vote"
    );
}

#[madsim::test]
async fn a_torn_crash_keeps_a_prefix_of_the_pending_writes() {
    let mut saw_partial = false;
    for _ in 0..20 {
        let disk = delayed();
        let (log, _) = disk.open();
        for index in 1..=6 {
            append(&log, index);
        }
        disk.crash(true);
        let (log, _) = disk.open();
        let survived = indices(&log);
        let expected: Vec<u64> = (1..=survived.len() as u64).collect();
        assert_eq!(survived, expected, "a prefix, never a hole");
        saw_partial |= !survived.is_empty() && survived.len() < 6;
    }
    assert!(
        saw_partial,
        "some torn crash kept part of the pending writes"
    );
}

/// As LMDB's state environment: a state-machine commit is durable once the next one is made
/// (or a snapshot recorded), whatever the log does; the last one is lost at a crash.
#[madsim::test]
async fn state_machine_commits_are_durable_only_with_the_next_commit() {
    let disk = delayed();
    let (log, machine) = disk.open();
    let put = |key: &[u8]| {
        let mut write = machine.write().expect("write");
        write.put(key, b"v", 1).expect("put");
        write.commit().expect("commit");
    };
    put(b"first");
    // A log sync does not make it durable.
    append(&log, 1);
    madsim::time::sleep(Duration::from_millis(10)).await;
    disk.crash(false);
    let (_, machine) = disk.open();
    let found = |machine: &dbadger_sim::store::SimStateMachine, key: &[u8]| {
        machine
            .read()
            .expect("read")
            .get(key)
            .expect("get")
            .is_some()
    };
    assert!(
        !found(&machine, b"first"),
        "a log sync made the commit durable"
    );
    let put = |key: &[u8]| {
        let mut write = machine.write().expect("write");
        write.put(key, b"v", 1).expect("put");
        write.commit().expect("commit");
    };
    put(b"first");
    put(b"second");
    disk.crash(false);
    let (_, machine) = disk.open();
    assert!(
        found(&machine, b"first"),
        "the next commit made the first durable"
    );
    assert!(
        !found(&machine, b"second"),
        "the last commit is lost at a crash"
    );
}

#[madsim::test]
async fn injected_errors_fail_the_operation_and_mark_the_disk() {
    let disk = delayed();
    let (log, _) = disk.open();
    disk.set_faults(FaultRates {
        write: 1.0,
        ..FaultRates::default()
    });
    assert!(
        log.append(vec![entry(1)], FlushCallback::new(|_| {}))
            .is_err()
    );
    assert!(disk.failed(), "the node must be restarted");
    disk.set_faults(FaultRates::default());
    let (log, _) = disk.open();
    assert!(!disk.failed());
    append(&log, 1);
}

#[madsim::test]
async fn an_injected_sync_error_reports_the_flush_failed_and_loses_the_writes() {
    let disk = delayed();
    let (log, _) = disk.open();
    disk.set_faults(FaultRates {
        sync: 1.0,
        ..FaultRates::default()
    });
    let failed = Arc::new(AtomicUsize::new(0));
    log.append(vec![entry(1)], counting_callback(&failed, false))
        .expect("append is accepted");
    madsim::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(failed.load(Ordering::SeqCst), 1);
    disk.set_faults(FaultRates::default());
    let (log, _) = disk.open();
    assert!(indices(&log).is_empty());
}
