//! The LMDB store under injected faults: in every round a write, a commit or a sync fails (an
//! I/O error or a full map) at a random call while batches are appended (two in flight at a
//! time), votes saved and the log applied. After the fault every later write must fail; the
//! store is then reopened and checked against what was acknowledged (`common::verify`: no
//! hole, nothing acknowledged lost, no partial batch, the applied state is the log's replay).

mod common;

use std::sync::mpsc;
use std::time::Duration;

use common::{Acknowledged, apply_through, batch, options, resume_point, verify};
use dbadger_core::StorageError;
use dbadger_core::raft_types::{LogEntry, Vote};
use dbadger_core::storage::{FlushCallback, LogStore, StateMachineStore, StateWrite};
use dbadger_core::testing::Workload;
use dbadger_lmdb::{FaultPoint, InjectedFault, LmdbFaults, LmdbStore};

const ROUNDS: u64 = 80;
const STEPS_PER_ROUND: u64 = 80;
const FLUSH_WAIT: Duration = Duration::from_secs(30);

type Outcome = mpsc::Receiver<Result<(), StorageError>>;

/// Appends without waiting; the receiver gets the call's error or the flush's outcome.
fn append_queued(log: &impl LogStore, entries: Vec<LogEntry>) -> Outcome {
    let (sender, receiver) = mpsc::channel();
    let on_flush = sender.clone();
    if let Err(error) = log.append(
        entries,
        FlushCallback::new(move |result| drop(on_flush.send(result))),
    ) {
        drop(sender.send(Err(error)));
    }
    receiver
}

fn wait(outcome: &Outcome) -> Result<(), StorageError> {
    outcome
        .recv_timeout(FLUSH_WAIT)
        .expect("every append reports its outcome")
}

fn random_fault(random: &mut Workload) -> (FaultPoint, u64, InjectedFault) {
    let point = match random.next_u64() % 3 {
        0 => FaultPoint::Write,
        1 => FaultPoint::Commit,
        _ => FaultPoint::Sync,
    };
    let fault = if random.next_u64().is_multiple_of(2) {
        InjectedFault::Io
    } else {
        InjectedFault::Full
    };
    (point, random.next_u64() % 60, fault)
}

/// After a fault, every kind of write fails.
fn assert_every_write_refused(log: &impl LogStore, machine: &impl StateMachineStore, round: u64) {
    let next = log
        .log_bounds()
        .expect("bounds")
        .last
        .map_or(1, |id| id.index + 1);
    assert!(
        wait(&append_queued(log, batch(u64::MAX / 2, 1, next))).is_err(),
        "round {round}: an append succeeded after a failed write"
    );
    assert!(
        log.save_vote(&Vote::new(u64::MAX / 2, 1)).is_err(),
        "round {round}: a vote was saved after a failed write"
    );
    assert!(
        machine.write().and_then(StateWrite::commit).is_err(),
        "round {round}: a state-machine commit succeeded after a failed write"
    );
}

#[test]
fn random_faults_lose_nothing_acknowledged_and_leave_no_hole() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut random = Workload::new(0xFA_0175);
    let mut acknowledged = Acknowledged::default();
    let mut injected = 0;
    for round in 0..ROUNDS {
        let faults = LmdbFaults::new();
        let (log, machine) = LmdbStore::open_with_faults(dir.path(), options(), faults.clone())
            .expect("open")
            .into_parts();
        let (point, calls_before, fault) = random_fault(&mut random);
        faults.fail_at(point, calls_before, fault);
        let (mut next_index, mut next_batch) = resume_point(&log);
        let mut term = log
            .vote()
            .expect("vote")
            .map_or(1, |v| v.leader_id.term + 1);
        let mut failed = false;
        for _ in 0..STEPS_PER_ROUND {
            match random.next_u64() % 4 {
                0 | 1 => {
                    let mut in_flight = Vec::new();
                    for _ in 0..2 {
                        let len = 1 + random.next_u64() % 8;
                        let last = next_index + len - 1;
                        in_flight.push((
                            append_queued(&log, batch(next_batch, len, next_index)),
                            last,
                        ));
                        next_index = last + 1;
                        next_batch += 1;
                    }
                    let mut earlier_failed = false;
                    for (outcome, last) in in_flight {
                        match wait(&outcome) {
                            Ok(()) => {
                                assert!(
                                    !earlier_failed,
                                    "round {round}: an append behind a failed one succeeded"
                                );
                                acknowledged.log_index = acknowledged.log_index.max(last);
                            }
                            Err(_) => earlier_failed = true,
                        }
                    }
                    failed |= earlier_failed;
                }
                2 => match log.save_vote(&Vote::new(term, 1)) {
                    Ok(()) => {
                        acknowledged.vote_term = term;
                        term += 1;
                    }
                    Err(_) => failed = true,
                },
                _ => match apply_through(&log, &machine, acknowledged.log_index) {
                    Ok(true) => acknowledged.applied_index = acknowledged.log_index,
                    Ok(false) => {}
                    Err(_) => failed = true,
                },
            }
            if failed {
                assert_every_write_refused(&log, &machine, round);
                break;
            }
        }
        injected += faults.injected();
        drop((log, machine));
        verify(dir.path(), &acknowledged, round);
    }
    eprintln!("fault test: {injected} faults in {ROUNDS} rounds; acknowledged {acknowledged:?}");
    assert!(
        injected >= ROUNDS / 2,
        "only {injected} of {ROUNDS} planned faults were reached"
    );
}
