//! A data directory keeps its node id and format version across restarts, and a directory
//! written by an unknown format version is refused rather than misread.

use dbadger_lmdb::{LmdbOptions, LmdbStore};

/// The id is drawn once, on first use, and read back after a reopen without drawing again.
#[test]
fn node_id_is_drawn_once_and_kept() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let first = {
        let store = LmdbStore::open(dir.path(), LmdbOptions::default()).expect("open");
        let id = store.node_id(|| 0x5EED).expect("node id");
        assert_eq!(
            store.node_id(|| panic!("drawn twice")).expect("node id"),
            id
        );
        id
    };
    let store = LmdbStore::open(dir.path(), LmdbOptions::default()).expect("reopen");
    assert_eq!(
        store
            .node_id(|| panic!("drawn after reopen"))
            .expect("node id"),
        first
    );
}

/// A store stamped with another format version does not open.
#[test]
fn unknown_format_version_is_refused() {
    let dir = tempfile::tempdir().expect("temporary directory");
    drop(LmdbStore::open(dir.path(), LmdbOptions::default()).expect("create"));
    {
        // Stamp a future version with heed directly, as a newer build would.
        let mut options = heed::EnvOpenOptions::new();
        options.max_dbs(8);
        #[allow(unsafe_code)]
        // SAFETY: the store above is closed; nothing else has this directory open.
        let env = unsafe { options.open(dir.path().join("lmdb")) }.expect("raw open");
        let txn = env.write_txn().expect("txn");
        let meta = env
            .create_databases_and_commit(txn, |opener, txn| -> heed::Result<_> {
                let db = opener.create_database::<heed::types::Str, heed::types::Bytes>(
                    txn,
                    Some("raft_meta"),
                )?;
                Ok(heed::CommitOrAbort::<_, ()>::Commit(db))
            })
            .expect("open raft_meta")
            .unwrap_commit();
        let mut txn = env.write_txn().expect("txn");
        meta.put(&mut txn, "format_version", &99u32.to_be_bytes())
            .expect("put");
        txn.commit().expect("commit");
    }
    let error =
        LmdbStore::open(dir.path(), LmdbOptions::default()).expect_err("future format opened");
    assert!(
        error.to_string().contains("format version 99"),
        "unclear error: {error}"
    );
}

/// A log whose state machine's environment went missing is refused, not paired with a new,
/// empty state machine.
#[test]
fn a_missing_state_environment_is_refused() {
    let dir = tempfile::tempdir().expect("temporary directory");
    drop(LmdbStore::open(dir.path(), LmdbOptions::default()).expect("create"));
    std::fs::remove_dir_all(dir.path().join("lmdb").join("state")).expect("remove state");
    let refused = LmdbStore::open(dir.path(), LmdbOptions::default()).expect_err("refused");
    assert!(
        refused.to_string().contains("lmdb/state/ is missing"),
        "{refused}"
    );
    assert!(
        !dir.path().join("lmdb").join("state").exists(),
        "not recreated"
    );
}
