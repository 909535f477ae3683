//! The in-memory reference store passes the storage conformance suite and openraft's own
//! storage suite through the generic adapters.

use dbadger_core::storage::memory::{MemoryLogStore, MemoryStateMachine};
use dbadger_core::testing::{StoreFactory, run_conformance, run_openraft_suite};
use openraft::AsyncRuntime;
use openraft_rt_tokio::TokioRuntime;

struct MemoryFactory;

impl StoreFactory for MemoryFactory {
    type Guard = ();
    type Log = MemoryLogStore;
    type Machine = MemoryStateMachine;

    fn create(&self) -> ((), MemoryLogStore, MemoryStateMachine) {
        ((), MemoryLogStore::new(), MemoryStateMachine::new())
    }
}

/// Log, vote, atomicity, snapshot and model-agreement checks hold for the memory store.
#[test]
fn memory_store_passes_conformance() {
    run_conformance(&MemoryFactory);
}

/// openraft's storage suite accepts the memory store behind the generic adapters.
#[test]
fn memory_store_passes_openraft_suite() {
    TokioRuntime::run(async {
        run_openraft_suite::<TokioRuntime, _>(MemoryFactory)
            .await
            .expect("openraft storage suite");
    });
}
