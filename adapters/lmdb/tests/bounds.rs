//! The log writer's bounds: a full queue makes writers wait (back-pressure, not unbounded
//! memory), and a write that waits for a wedged disk fails after `write_timeout` instead of
//! hanging its caller forever. The disk is wedged through the fault seam (a stalled sync).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use dbadger_core::raft_types::{EntryPayload, LeaderId, LogEntry, LogId, Vote};
use dbadger_core::storage::{FlushCallback, LogStore};
use dbadger_lmdb::{FaultPoint, InjectedFault, LmdbFaults, LmdbOptions, LmdbStore};
use openraft::vote::RaftLeaderId;

const STALL: Duration = Duration::from_millis(1500);

fn entry(index: u64) -> LogEntry {
    LogEntry {
        log_id: LogId::new(LeaderId::new(1, 1), index),
        payload: EntryPayload::Blank,
    }
}

fn options(max_queued_writes: usize, write_timeout: Duration) -> LmdbOptions {
    LmdbOptions {
        max_size_bytes: 64 << 20,
        max_queued_writes,
        write_timeout,
        ..LmdbOptions::default()
    }
}

/// While the disk stalls, a writer can queue at most the queue's capacity (plus the write
/// under way) and then waits; when the disk comes back every append completes. Groups are
/// limited to one write so the count is exact: otherwise the writer may sweep a varying number
/// of appends into the stalled group before it starts writing.
#[test]
fn a_full_queue_makes_appends_wait() {
    const QUEUED: usize = 2;
    let dir = tempfile::tempdir().expect("temporary directory");
    let faults = LmdbFaults::new();
    let (log, _machine) = LmdbStore::open_with_faults(
        dir.path(),
        LmdbOptions {
            max_group_commit: 1,
            ..options(QUEUED, Duration::from_secs(30))
        },
        faults.clone(),
    )
    .expect("open")
    .into_parts();
    faults.fail_at(FaultPoint::Sync, 0, InjectedFault::Stall(STALL));
    let log = Arc::new(log);
    let returned = Arc::new(AtomicUsize::new(0));
    let (flushed, flushes) = mpsc::channel();
    let started = Instant::now();
    let appender = {
        let (log, returned) = (Arc::clone(&log), Arc::clone(&returned));
        std::thread::spawn(move || {
            for index in 1..=8 {
                let flushed = flushed.clone();
                log.append(
                    vec![entry(index)],
                    FlushCallback::new(move |result| drop(flushed.send(result))),
                )
                .expect("append accepted");
                returned.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    // The write under way plus a full queue: that many appends return during the stall...
    let room = 1 + QUEUED;
    while returned.load(Ordering::SeqCst) < room {
        assert!(
            started.elapsed() < STALL,
            "only {} appends returned before the stall ended",
            returned.load(Ordering::SeqCst)
        );
        std::thread::yield_now();
    }
    // ...and no more while the disk is still stalled (a negative can only be watched for).
    std::thread::sleep(STALL / 4);
    let during_stall = returned.load(Ordering::SeqCst);
    assert!(
        started.elapsed() < STALL,
        "the check ran after the stall ended"
    );
    assert_eq!(
        during_stall, room,
        "{during_stall} appends returned while the disk stalled with room for {QUEUED} queued"
    );
    appender.join().expect("appender");
    for _ in 0..8 {
        flushes
            .recv_timeout(Duration::from_secs(30))
            .expect("every append flushed")
            .expect("flush succeeded after the stall");
    }
}

/// A vote waits for its durable commit at most `write_timeout`; then it fails, and the store
/// refuses later writes (the disk can no longer be trusted to have what it was given).
#[test]
fn a_write_on_a_wedged_disk_fails_after_the_write_timeout() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let faults = LmdbFaults::new();
    let timeout = Duration::from_millis(200);
    let (log, _machine) =
        LmdbStore::open_with_faults(dir.path(), options(16, timeout), faults.clone())
            .expect("open")
            .into_parts();
    faults.fail_at(FaultPoint::Sync, 0, InjectedFault::Stall(STALL));
    let started = Instant::now();
    let error = log
        .save_vote(&Vote::new(2, 1))
        .expect_err("a vote on a wedged disk succeeded");
    let waited = started.elapsed();
    assert!(
        waited >= timeout && waited < STALL,
        "the vote failed after {waited:?}"
    );
    assert!(
        error.to_string().contains("did not finish a write"),
        "unexpected error: {error}"
    );
    assert!(
        log.save_vote(&Vote::new(3, 1)).is_err(),
        "a write after a timed-out one was accepted"
    );
}
