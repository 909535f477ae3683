//! A committed id, which nobody waits for, does not cost a durable commit of its own: it shares
//! the next write's transaction, or is written alone after a short delay, and never lost at a
//! clean close.

use std::path::Path;
use std::time::{Duration, Instant};

use dbadger_core::raft_types::{EntryPayload, LeaderId, LogEntry, LogId};
use dbadger_core::storage::LogStore;
use dbadger_core::testing::append_durably;
use dbadger_lmdb::{LmdbLogStore, LmdbOptions, LmdbStore};
use openraft::vote::RaftLeaderId;

const WAIT: Duration = Duration::from_secs(10);

fn log_id(index: u64) -> LogId {
    LogId::new(LeaderId::new(1, 1), index)
}

fn blank(index: u64) -> Vec<LogEntry> {
    vec![LogEntry {
        log_id: log_id(index),
        payload: EntryPayload::Blank,
    }]
}

/// The log of the store in `dir`, with default options.
fn open_log(dir: &Path) -> LmdbLogStore {
    let (log, _machine) = LmdbStore::open(dir, LmdbOptions::default())
        .expect("open")
        .into_parts();
    log
}

/// Saved alone, a committed id is written only after the delay (at least 40 ms later), and
/// then without any other write.
#[test]
fn a_lone_committed_id_waits_for_company_then_is_written() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let log = open_log(dir.path());
    append_durably(&log, blank(1));
    let before = log.stats().durable_commits;
    let saved = Instant::now();
    log.save_committed(Some(&log_id(1)))
        .expect("save committed");
    let deadline = saved + WAIT;
    while log.stats().durable_commits == before {
        assert!(
            Instant::now() < deadline,
            "the committed id was never written"
        );
        std::thread::yield_now();
    }
    assert!(
        saved.elapsed() >= Duration::from_millis(40),
        "written alone after {:?}, without waiting for another write",
        saved.elapsed()
    );
    assert_eq!(log.committed().expect("committed"), Some(log_id(1)));
}

/// A committed id followed by an append goes to disk in the append's transaction.
#[test]
fn a_committed_id_shares_the_next_append_transaction() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let log = open_log(dir.path());
    append_durably(&log, blank(1));
    let before = log.stats();
    log.save_committed(Some(&log_id(1)))
        .expect("save committed");
    append_durably(&log, blank(2));
    let after = log.stats();
    assert_eq!(after.writes - before.writes, 2, "both writes were written");
    assert_eq!(
        after.durable_commits - before.durable_commits,
        1,
        "the committed id and the append shared one transaction"
    );
}

/// A committed id saved just before a clean close is on disk after the reopen.
#[test]
fn a_committed_id_saved_before_close_is_kept() {
    let dir = tempfile::tempdir().expect("temporary directory");
    {
        let log = open_log(dir.path());
        append_durably(&log, blank(1));
        log.save_committed(Some(&log_id(1)))
            .expect("save committed");
    }
    let log = open_log(dir.path());
    assert_eq!(log.committed().expect("committed"), Some(log_id(1)));
}
