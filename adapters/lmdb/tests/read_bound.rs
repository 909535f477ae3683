//! A read view that outlives `max_read_duration` stops serving reads with a typed error, so it
//! cannot pin old pages forever; a fresh view reads normally.

use std::time::Duration;

use dbadger_core::StorageError;
use dbadger_core::storage::{KvRead, KvWrite, StateMachineStore, StateWrite};
use dbadger_lmdb::{LmdbOptions, LmdbStore};

/// Reads through an expired view fail with `ReadExpired`; a new view succeeds.
#[test]
fn expired_read_views_are_refused() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let options = LmdbOptions {
        max_read_duration: Duration::from_millis(1),
        ..LmdbOptions::default()
    };
    let (_, machine) = LmdbStore::open(dir.path(), options)
        .expect("open")
        .into_parts();
    let mut txn = machine.write().expect("write");
    txn.put(b"k", b"v", 1).expect("put");
    txn.commit().expect("commit");

    let view = machine.read().expect("view");
    // The passage of time is what this test is about: let the view outlive its bound.
    std::thread::sleep(Duration::from_millis(5));
    assert!(matches!(
        view.get(b"k"),
        Err(StorageError::ReadExpired { limit_ms: 1 })
    ));
    drop(view);
    let fresh = machine.read().expect("fresh view");
    assert!(fresh.get(b"k").expect("fresh read").is_some());
}
