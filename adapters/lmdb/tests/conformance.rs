//! The LMDB store passes the core storage conformance suite and openraft's storage suite, on a
//! real disk (temporary directories).

use dbadger_core::testing::{StoreFactory, run_conformance, run_openraft_suite};
use dbadger_lmdb::{LmdbLogStore, LmdbOptions, LmdbStateMachine, LmdbStore};
use openraft::AsyncRuntime;
use openraft_rt_tokio::TokioRuntime;
use tempfile::TempDir;

struct LmdbFactory;

impl StoreFactory for LmdbFactory {
    type Guard = TempDir;
    type Log = LmdbLogStore;
    type Machine = LmdbStateMachine;

    fn create(&self) -> (TempDir, LmdbLogStore, LmdbStateMachine) {
        let dir = tempfile::tempdir().expect("temporary directory");
        let options = LmdbOptions {
            max_size_bytes: 64 << 20,
            ..LmdbOptions::default()
        };
        let (log, machine) = LmdbStore::open(dir.path(), options)
            .expect("open")
            .into_parts();
        (dir, log, machine)
    }
}

/// Log, vote, atomicity, snapshot and model-agreement checks hold for LMDB.
#[test]
fn lmdb_store_passes_conformance() {
    run_conformance(&LmdbFactory);
}

/// openraft's storage suite accepts the LMDB store behind the generic adapters.
#[test]
fn lmdb_store_passes_openraft_suite() {
    TokioRuntime::run(async {
        run_openraft_suite::<TokioRuntime, _>(LmdbFactory)
            .await
            .expect("openraft storage suite");
    });
}
