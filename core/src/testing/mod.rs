//! The storage conformance suite (feature `testing`): the properties every store must have,
//! runnable against any implementation of the storage traits.
//!
//! A store's test creates a [`StoreFactory`] that makes fresh, empty stores and calls
//! [`run_conformance`] (synchronous key-value, log, atomicity and snapshot checks) and
//! [`run_openraft_suite`] (openraft's own storage test suite through the generic adapters of
//! [`crate::raft_storage`], under the caller's async runtime). The in-memory reference store
//! runs both in this crate's tests; LMDB and the simulator's store run them in theirs.
//!
//! Stores that flush to a disk also implement [`FaultyStoreFactory`] and run
//! [`run_failed_flush_conformance`]: LMDB through its fault seam, the simulator's store through
//! its simulated disk. The in-memory reference store has no flush that could fail, so the check
//! does not apply to it.

mod checks;
mod failed_flush;
mod model;
mod restore_checks;
mod workload;

use std::sync::Arc;

use openraft::testing::log::{StoreBuilder, Suite};
use openraft::{AsyncRuntime, StorageError as RaftStorageError};

use crate::raft_storage::{RaftLog, RaftStateMachineStore};
use crate::raft_types::RaftTypes;
use crate::storage::{LogStore, StateMachineStore};

pub use checks::{append_durably, dump};
pub use model::Model;
pub use workload::Workload;

/// Makes fresh, empty stores for one check. `Guard` keeps whatever backs them (a temporary
/// directory, for instance) alive while the check runs.
pub trait StoreFactory: Send + Sync {
    /// Kept alive for as long as the stores are used.
    type Guard: Send + Sync;
    /// The log store under test.
    type Log: LogStore;
    /// The state-machine store under test.
    type Machine: StateMachineStore;

    /// Creates an empty log store and an empty state-machine store.
    fn create(&self) -> (Self::Guard, Self::Log, Self::Machine);
}

/// A factory whose stores can be made to fail a flush, and reopened from what they made durable.
pub trait FaultyStoreFactory: StoreFactory {
    /// Makes the next flush of the stores behind `guard` fail.
    fn fail_next_flush(&self, guard: &Self::Guard);
    /// Closes `log` and `machine` and opens the stores behind `guard` again from their disk.
    fn reopen(
        &self,
        guard: &Self::Guard,
        log: Self::Log,
        machine: Self::Machine,
    ) -> (Self::Log, Self::Machine);
}

/// Checks the fsyncgate rule: after a failed flush every later write fails, and a reopened
/// log has no hole. Panics naming the broken property.
pub fn run_failed_flush_conformance<F: FaultyStoreFactory>(factory: &F) {
    failed_flush::failed_flush_fails_later_writes(factory);
}

/// Runs every synchronous conformance check; panics with the name of the first that fails.
pub fn run_conformance<F: StoreFactory>(factory: &F) {
    checks::log_append_read_truncate_purge(factory);
    checks::append_refuses_gaps(factory);
    checks::flush_callback_fires_once(factory);
    checks::vote_and_committed_round_trip(factory);
    checks::scan_honours_bounds(factory);
    checks::uncommitted_write_changes_nothing(factory);
    checks::applied_state_commits_with_data(factory);
    checks::snapshot_round_trip(factory);
    checks::corrupt_snapshot_leaves_state_untouched(factory);
    checks::snapshot_is_a_consistent_point(factory);
    for seed in 1..=8 {
        checks::agrees_with_reference_model(factory, seed);
    }
    restore_checks::staging_commits_with_the_transaction(factory);
    restore_checks::restores_replace_the_key_space(factory);
}

/// Runs openraft's own storage suite against the store through the generic adapters.
pub async fn run_openraft_suite<RT, F>(factory: F) -> Result<(), RaftStorageError<RaftTypes<RT>>>
where
    RT: AsyncRuntime,
    F: StoreFactory,
{
    Suite::test_all(OpenraftBuilder(factory)).await
}

struct OpenraftBuilder<F>(F);

impl<RT, F>
    StoreBuilder<RaftTypes<RT>, RaftLog<F::Log>, RaftStateMachineStore<F::Machine>, F::Guard>
    for OpenraftBuilder<F>
where
    RT: AsyncRuntime,
    F: StoreFactory,
{
    async fn build(
        &self,
    ) -> Result<
        (F::Guard, RaftLog<F::Log>, RaftStateMachineStore<F::Machine>),
        RaftStorageError<RaftTypes<RT>>,
    > {
        let (guard, log, machine) = self.0.create();
        Ok((
            guard,
            RaftLog::new(Arc::new(log)),
            RaftStateMachineStore::new(Arc::new(machine)),
        ))
    }
}
