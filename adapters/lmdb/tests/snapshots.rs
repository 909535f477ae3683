//! Snapshot files on disk: damaged files are refused without touching the state, snapshots
//! taken while writes continue capture one consistent point, retention deletes old files, and
//! everything recorded survives a reopen.

use std::fs::{self, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::sync::{Arc, Barrier};

use dbadger_core::raft_types::{LeaderId, LogId};
use dbadger_core::snapshot::{build_snapshot, install_snapshot};
use dbadger_core::storage::{
    AppliedState, KvWrite, SnapshotData, StateMachineStore, StateRead, StateWrite,
};
use dbadger_core::testing::dump;
use dbadger_lmdb::{LmdbOptions, LmdbStateMachine, LmdbStore};
use openraft::vote::RaftLeaderId;

fn open(dir: &std::path::Path) -> LmdbStateMachine {
    let options = LmdbOptions {
        max_size_bytes: 256 << 20,
        snapshot_retain: 2,
        ..LmdbOptions::default()
    };
    LmdbStore::open(dir, options).expect("open").into_parts().1
}

/// Writes key `i` at revision `i` and records `i` as applied, in one transaction.
fn write_applied(machine: &LmdbStateMachine, index: u64) {
    let mut txn = machine.write().expect("write txn");
    txn.put(format!("key-{index:08}").as_bytes(), &[1; 100], index)
        .expect("put");
    txn.set_applied_state(&AppliedState {
        last_applied: Some(LogId::new(LeaderId::new(1, 1), index)),
        ..AppliedState::default()
    })
    .expect("applied");
    txn.commit().expect("commit");
}

/// A snapshot built while another thread keeps writing holds exactly the keys applied up to
/// its recorded log id, no more, no less.
#[test]
fn snapshot_while_writing_is_a_consistent_point() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let machine = Arc::new(open(dir.path()));
    for index in 1..=2000 {
        write_applied(&machine, index);
    }
    let start = Arc::new(Barrier::new(2));
    let writer = {
        let (machine, start) = (Arc::clone(&machine), Arc::clone(&start));
        std::thread::spawn(move || {
            start.wait();
            for index in 2001..=6000 {
                write_applied(&machine, index);
            }
        })
    };
    start.wait();
    let mut checked = 0;
    while checked < 5 {
        let (meta, snapshot) = build_snapshot(&*machine).expect("build while writing");
        let applied = meta.last_log_id.expect("applied").index;
        let target_dir = tempfile::tempdir().expect("temporary directory");
        let target = open(target_dir.path());
        install_snapshot(&target, &meta, snapshot).expect("install");
        let keys: Vec<Vec<u8>> = dump(&target).into_iter().map(|(key, _)| key).collect();
        let expected: Vec<Vec<u8>> = (1..=applied)
            .map(|i| format!("key-{i:08}").into_bytes())
            .collect();
        assert_eq!(
            keys, expected,
            "snapshot at {applied} is not a consistent point"
        );
        checked += 1;
    }
    writer.join().expect("writer thread");
}

/// A snapshot file truncated or altered on disk is refused on install; the target's state is
/// unchanged.
#[test]
fn damaged_snapshot_files_are_refused() {
    let source_dir = tempfile::tempdir().expect("temporary directory");
    let source = open(source_dir.path());
    for index in 1..=300 {
        write_applied(&source, index);
    }
    let target_dir = tempfile::tempdir().expect("temporary directory");
    let target = open(target_dir.path());
    write_applied(&target, 1);
    let before = (
        dump(&target),
        target
            .read()
            .expect("view")
            .applied_state()
            .expect("applied"),
    );

    for damage in ["truncate", "flip"] {
        let (meta, snapshot) = build_snapshot(&source).expect("build");
        let path = source_dir.path().join("snapshots").join(format!(
            "snapshot-1-1-{}.snap",
            meta.last_log_id.expect("applied").index
        ));
        let size = fs::metadata(&path).expect("snapshot file").len();
        assert_eq!(size, snapshot.size_bytes());
        let mut file = OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("open snapshot");
        match damage {
            "truncate" => file.set_len(size / 2).expect("truncate"),
            _ => {
                file.seek(SeekFrom::Start(size / 2)).expect("seek");
                file.write_all(&[0xFF, 0x00, 0xFF]).expect("overwrite");
            }
        }
        drop(file);
        let error =
            install_snapshot(&target, &meta, snapshot).expect_err("damaged snapshot installed");
        assert!(
            error.to_string().contains("snapshot"),
            "{damage}: unclear error {error}"
        );
        let after = (
            dump(&target),
            target
                .read()
                .expect("view")
                .applied_state()
                .expect("applied"),
        );
        assert_eq!(
            after, before,
            "{damage}: state changed by a refused snapshot"
        );
        write_applied(&source, 301 + u64::from(damage == "flip"));
    }
}

/// Only the configured number of snapshot files is kept, the current one among them, and the
/// current snapshot is found again after a reopen.
#[test]
fn retention_and_reopen() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let current_meta = {
        let machine = open(dir.path());
        let mut last = None;
        for round in 1..=4u64 {
            write_applied(&machine, round);
            last = Some(build_snapshot(&machine).expect("build").0);
        }
        last.expect("built")
    };
    let mut files: Vec<String> = fs::read_dir(dir.path().join("snapshots"))
        .expect("snapshot dir")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .into_string()
                .expect("utf-8")
        })
        .collect();
    files.sort();
    assert_eq!(
        files,
        ["snapshot-1-1-3.snap", "snapshot-1-1-4.snap"],
        "retention keeps 2"
    );
    let machine = open(dir.path());
    let (meta, snapshot) = machine
        .current_snapshot()
        .expect("current")
        .expect("recorded");
    assert_eq!(meta, current_meta);
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut snapshot.open().expect("open"), &mut bytes).expect("read");
    assert_eq!(bytes.len() as u64, snapshot.size_bytes());
}
