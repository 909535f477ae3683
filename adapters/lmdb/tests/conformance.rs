//! The LMDB store passes the core storage conformance suite and openraft's storage suite, on a
//! real disk (temporary directories).

use dbadger_core::testing::{
    FaultyStoreFactory, StoreFactory, run_conformance, run_failed_flush_conformance,
    run_openraft_suite,
};
use dbadger_lmdb::{
    FaultPoint, InjectedFault, LmdbFaults, LmdbLogStore, LmdbOptions, LmdbStateMachine, LmdbStore,
};
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

/// LMDB stores in a temporary directory, opened with a fault plan.
struct FaultyLmdbFactory;

/// The directory and the fault plan of one store.
struct FaultyGuard {
    dir: TempDir,
    faults: LmdbFaults,
}

fn small_options() -> LmdbOptions {
    LmdbOptions {
        max_size_bytes: 64 << 20,
        ..LmdbOptions::default()
    }
}

impl StoreFactory for FaultyLmdbFactory {
    type Guard = FaultyGuard;
    type Log = LmdbLogStore;
    type Machine = LmdbStateMachine;

    fn create(&self) -> (FaultyGuard, LmdbLogStore, LmdbStateMachine) {
        let dir = tempfile::tempdir().expect("temporary directory");
        let faults = LmdbFaults::new();
        let (log, machine) =
            LmdbStore::open_with_faults(dir.path(), small_options(), faults.clone())
                .expect("open")
                .into_parts();
        (FaultyGuard { dir, faults }, log, machine)
    }
}

impl FaultyStoreFactory for FaultyLmdbFactory {
    fn fail_next_flush(&self, guard: &FaultyGuard) {
        guard.faults.fail_at(FaultPoint::Sync, 0, InjectedFault::Io);
    }

    fn reopen(
        &self,
        guard: &FaultyGuard,
        log: LmdbLogStore,
        machine: LmdbStateMachine,
    ) -> (LmdbLogStore, LmdbStateMachine) {
        drop((log, machine));
        guard.faults.clear();
        LmdbStore::open_with_faults(guard.dir.path(), small_options(), guard.faults.clone())
            .expect("reopen")
            .into_parts()
    }
}

/// After a failed flush (an injected EIO on the meta-page sync) every later write fails, and
/// the reopened log has no hole.
#[test]
fn lmdb_store_fails_every_write_after_a_failed_flush() {
    run_failed_flush_conformance(&FaultyLmdbFactory);
}
